package ecsapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/berthdev/berth/ecsapi/wire"
)

// A task's name is its ECS task ID: 32 lowercase hexadecimal digits, the format of
// ECS's own IDs, which is also a valid Kubernetes name.
//
// RunTask with a clientToken names its tasks from the token: the same namespace
// (account), cluster and token give the same names, so a retry after a lost answer
// finds the tasks the first call created (AlreadyExists) instead of creating more,
// and two API replicas racing on one retry create each task once. ECS scopes a token
// to a cluster, as the names do. The first call's request is fingerprinted on its
// tasks (annotationRunRequest), so a token reused with other parameters answers
// ConflictException as in ECS, rather than the tasks of another request. A token is
// remembered as long as its tasks exist (stopped tasks are kept for the cluster's
// retention period); ECS keeps one for up to 24 hours.

// Annotations the API writes on the tasks it creates.
const (
	// annotationRunRequest is the fingerprint of the RunTask request that created a
	// task with a clientToken.
	annotationRunRequest = "ecs.berth.dev/run-request"
	// annotationLaunchType records launchType EXTERNAL (ECS's on-premises instances);
	// a task without it is EC2, which every Berth instance is otherwise.
	annotationLaunchType = "ecs.berth.dev/launch-type"
)

// maxClientToken is RunTask's bound on clientToken.
const maxClientToken = 64

// tokenTaskName is the name of task i of a RunTask call with a clientToken.
func tokenTaskName(namespace, cluster, token string, i int) string {
	h := sha256.New()
	for _, part := range []string{namespace, cluster, token, strconv.Itoa(i)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// randomTaskName is the name of a task created without a clientToken.
func randomTaskName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestFingerprint identifies a request's parameters: the hash of its JSON as the
// API would encode it (members sorted, absent ones left out), so the same request
// sent again, in any member order, has the same fingerprint.
func requestFingerprint(in any) (string, error) {
	raw, err := wire.ECS.Marshal(in)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16]), nil
}

// validClientToken checks ECS's grammar: 1 to 64 ASCII characters from 33 to 126.
func validClientToken(token string) error {
	if len(token) > maxClientToken {
		return wire.InvalidParameter("clientToken", "must be at most %d characters", maxClientToken)
	}
	for i := 0; i < len(token); i++ {
		if token[i] < 33 || token[i] > 126 {
			return wire.InvalidParameter("clientToken", "must be ASCII characters 33-126 (no spaces or control characters), found %q at %d", token[i], i)
		}
	}
	return nil
}
