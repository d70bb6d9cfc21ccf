package ecsapi

import (
	"encoding/base64"
	"encoding/json"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
)

// ECS's paging defaults and limits: List calls answer maxResults items (default
// 100, ListServices 10) and a nextToken to go on from.
const (
	defaultPage      = 100
	defaultPageSmall = 10
)

// page returns one page of keys, sorted, after the key nextToken names: a token is
// the last key returned, so a page never repeats or skips an item that was neither
// added nor removed between calls.
func page(keys []string, nextToken *string, maxResults *int32, def, max int32) ([]string, *string, error) {
	n := def
	if maxResults != nil {
		if *maxResults < 1 || *maxResults > max {
			return nil, nil, wire.InvalidParameter("maxResults", "must be between 1 and %d", max)
		}
		n = *maxResults
	}
	sort.Strings(keys)
	start := 0
	if tok := aws.ToString(nextToken); tok != "" {
		after, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			return nil, nil, wire.InvalidParameter("nextToken", "is not a token this API returned")
		}
		start = sort.SearchStrings(keys, string(after))
		if start < len(keys) && keys[start] == string(after) {
			start++
		}
	}
	end := min(start+int(n), len(keys))
	out := keys[start:end]
	if end < len(keys) {
		return out, aws.String(base64.RawURLEncoding.EncodeToString([]byte(out[len(out)-1]))), nil
	}
	return out, nil, nil
}

// tagsOf reads the ECS tags an object carries in its annotation.
func tagsOf(annotations map[string]string) []types.Tag {
	raw := annotations[ecsv1alpha1.AnnotationTags]
	if raw == "" {
		return []types.Tag{}
	}
	var kv []ecsv1alpha1.Tag
	if err := json.Unmarshal([]byte(raw), &kv); err != nil {
		return []types.Tag{}
	}
	out := make([]types.Tag, len(kv))
	for i, t := range kv {
		out[i] = types.Tag{Key: aws.String(t.Key), Value: aws.String(t.Value)}
	}
	return out
}

// setTags merges tags into an object's annotation (a key set twice keeps the last
// value) and removes the keys in remove.
func setTags(annotations *map[string]string, tags []types.Tag, remove []string) error {
	current := tagsOf(*annotations)
	byKey := map[string]string{}
	for _, t := range current {
		byKey[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for i, t := range tags {
		k := aws.ToString(t.Key)
		if k == "" || len(k) > 128 {
			return wire.InvalidParameter("tags", "tag %d: key must be 1 to 128 characters", i)
		}
		if len(aws.ToString(t.Value)) > 256 {
			return wire.InvalidParameter("tags", "tag %q: value must be at most 256 characters", k)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return wire.InvalidParameter("tags", "tag %q: the aws: prefix is reserved", k)
		}
		byKey[k] = aws.ToString(t.Value)
	}
	for _, k := range remove {
		delete(byKey, k)
	}
	if len(byKey) > 50 {
		return wire.InvalidParameter("tags", "a resource has at most 50 tags, this would make %d", len(byKey))
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := make([]ecsv1alpha1.Tag, len(keys))
	for i, k := range keys {
		kv[i] = ecsv1alpha1.Tag{Key: k, Value: byKey[k]}
	}
	if *annotations == nil {
		*annotations = map[string]string{}
	}
	if len(kv) == 0 {
		delete(*annotations, ecsv1alpha1.AnnotationTags)
		return nil
	}
	raw, err := json.Marshal(kv)
	if err != nil {
		return err
	}
	(*annotations)[ecsv1alpha1.AnnotationTags] = string(raw)
	return nil
}

// includes reports whether an include list asks for what.
func includes[T ~string](list []T, what T) bool {
	for _, v := range list {
		if v == what {
			return true
		}
	}
	return false
}

// missing is a Describe call's failure for a reference that names nothing.
func missing(arn string) types.Failure {
	return types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")}
}
