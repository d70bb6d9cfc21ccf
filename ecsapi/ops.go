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
		if err := wire.Unmarshal(body, in); err != nil {
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

// known are ECS's actions: the methods of the SDK's client that take an input
// shape. Those Berth does not serve answer UnsupportedFeatureException, anything
// else UnknownOperationException.
var known = func() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(&ecs.Client{})
	for i := 0; i < t.NumMethod(); i++ {
		m := t.Method(i)
		if m.Type.NumIn() >= 3 && strings.HasSuffix(m.Type.In(2).Elem().Name(), "Input") {
			out[m.Name] = true
		}
	}
	return out
}()

// Supported lists the actions served, for docs and tests.
func Supported() []string {
	out := make([]string, 0, len(operations))
	for a := range operations {
		out = append(out, a)
	}
	return out
}
