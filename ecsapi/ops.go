package ecsapi

import (
	"context"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/ecsapi/wire"
)

// handler serves one action: it decodes the body and returns the output struct.
type handler func(ctx context.Context, c *Call, body []byte) (any, error)

// op adapts a typed operation on the SDK's input and output shapes to a handler.
func op[In, Out any](f func(context.Context, *Call, *In) (*Out, error)) handler {
	return func(ctx context.Context, c *Call, body []byte) (any, error) {
		in := new(In)
		if err := c.api.wire.Unmarshal(body, in); err != nil {
			return nil, err
		}
		return f(ctx, c, in)
	}
}

// operations are the actions Berth serves, one table per file of operations.
var operations = merge(
	clusterOps(),
	taskDefinitionOps(),
	taskOps(),
	serviceOps(),
	instanceOps(),
	tagOps(),
)

func merge(tables ...map[string]handler) map[string]handler {
	out := map[string]handler{}
	for _, t := range tables {
		for action, h := range t {
			if _, dup := out[action]; dup {
				panic("ecsapi: action " + action + " served twice")
			}
			out[action] = h
		}
	}
	return out
}

// known are ECS's actions. Those Berth does not serve answer
// UnsupportedFeatureException, anything else UnknownOperationException.
var known = actionsOf(&ecs.Client{})

// actionsOf are a service's actions: the methods of its SDK's client that take an
// input shape.
func actionsOf(sdkClient any) map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(sdkClient)
	for i := 0; i < t.NumMethod(); i++ {
		m := t.Method(i)
		if m.Type.NumIn() >= 3 && strings.HasSuffix(m.Type.In(2).Elem().Name(), "Input") {
			out[m.Name] = true
		}
	}
	return out
}

// jsonAPI is one of the awsJson1_1 services the endpoint serves, told apart by the
// X-Amz-Target prefix.
type jsonAPI struct {
	wire         *wire.Service
	targetPrefix string
	// scope is the service of the SigV4 credential scope, and the prefix of the
	// action's name in AccessDeniedException messages (as IAM names actions).
	scope      string
	operations map[string]handler
	known      map[string]bool
	// metricPrefix tells the service's actions apart in metrics and logs where
	// both have one of the same name (TagResource).
	metricPrefix string
}

var (
	ecsAPI = &jsonAPI{wire: wire.ECS, targetPrefix: TargetPrefix, scope: "ecs",
		operations: operations, known: known}
	autoScalingAPI = &jsonAPI{wire: wire.ApplicationAutoScaling, targetPrefix: AutoScalingTargetPrefix,
		scope: "application-autoscaling", operations: autoScalingOperations, known: autoScalingKnown,
		metricPrefix: "application-autoscaling:"}
	jsonAPIs = []*jsonAPI{ecsAPI, autoScalingAPI}
)

// apiOf finds the service and action an X-Amz-Target names.
func apiOf(target string) (*jsonAPI, string) {
	for _, api := range jsonAPIs {
		if action, ok := strings.CutPrefix(target, api.targetPrefix); ok {
			return api, action
		}
	}
	return nil, ""
}

// Supported lists the actions served, for docs and tests.
func Supported() []string {
	out := make([]string, 0, len(operations))
	for a := range operations {
		out = append(out, a)
	}
	return out
}
