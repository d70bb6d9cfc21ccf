// Package wire is the awsJson1_1 protocol as the services `berth api` serves speak
// it (ECS, Application Auto Scaling): the JSON codec for the aws-sdk-go-v2 shapes
// (timestamps as epoch seconds, absent members left out) and the error answers. The
// server decodes requests into the SDK's own input structs and encodes the SDK's own
// output structs, so a shape is never written twice and a field the SDK's model has
// is a field the API has. What differs between the services (member names, error
// types) is a Service (service.go).
package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/smithy-go/middleware"
)

var (
	timeType = reflect.TypeOf(time.Time{})
	// metadataType is the SDK's ResultMetadata of every output: the client's
	// bookkeeping, not a member of the answer.
	metadataType = reflect.TypeOf(middleware.Metadata{})
)

// memberName is the wire name of a Go field of the SDK: Smithy's Go generator
// capitalises the model's member name, so ECS's lowerCamel members get their first
// letter back; Application Auto Scaling's members are PascalCase, as the Go names.
func (s *Service) memberName(goName string) string {
	if !s.LowerCamel {
		return goName
	}
	r, n := utf8.DecodeRuneInString(goName)
	return string(unicode.ToLower(r)) + goName[n:]
}

// Marshal encodes an SDK output struct as the service does: members that are nil
// (pointers, slices, maps) or empty enums are left out; numbers and booleans the
// model gives a default are always present; times are epoch seconds.
func (s *Service) Marshal(v any) ([]byte, error) {
	out, ok := s.encode(reflect.ValueOf(v))
	if !ok {
		out = map[string]any{}
	}
	return json.Marshal(out)
}

func (s *Service) encode(v reflect.Value) (any, bool) {
	switch v.Kind() {
	case reflect.Invalid:
		return nil, false
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, false
		}
		return s.encode(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			// Milliseconds, as ECS sends them: 1.733486400123E9.
			return math.Round(float64(t.UnixMilli())) / 1000, true
		}
		return s.encodeStruct(v), true
	case reflect.Slice:
		if v.IsNil() {
			return nil, false
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = s.element(v.Index(i))
		}
		return out, true
	case reflect.Map:
		if v.IsNil() {
			return nil, false
		}
		out := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			out[iter.Key().String()] = s.element(iter.Value())
		}
		return out, true
	case reflect.String:
		if v.Len() == 0 {
			return nil, false
		}
		return v.String(), true
	default:
		return v.Interface(), true
	}
}

// element encodes a list item or map value: an empty string there is a value (an
// entryPoint of [""]), not an absent member.
func (s *Service) element(v reflect.Value) any {
	if v.Kind() == reflect.String {
		return v.String()
	}
	out, _ := s.encode(v)
	return out
}

func (s *Service) encodeStruct(v reflect.Value) map[string]any {
	out := map[string]any{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous || f.Type == metadataType {
			continue
		}
		if val, ok := s.encode(v.Field(i)); ok {
			out[s.memberName(f.Name)] = val
		}
	}
	return out
}

// FieldError is a request member that could not be decoded; Path names it as the
// request spells it (containerDefinitions[0].memory).
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Unmarshal decodes a request body into an SDK input struct. It is strict where the
// SDKs are (a string where the model has a number is refused, naming the member) and
// stricter than AWS for unknown members: a member the model does not have is refused
// rather than ignored, so a request never loses a field without saying so.
func (s *Service) Unmarshal(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return &FieldError{Path: "(body)", Msg: "not valid JSON: " + err.Error()}
	}
	return s.decode("", raw, reflect.ValueOf(v).Elem())
}

func child(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (s *Service) decode(path string, raw any, v reflect.Value) error {
	if raw == nil {
		return nil // null is absent
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if err := s.decode(path, raw, elem.Elem()); err != nil {
			return err
		}
		v.Set(elem)
		return nil
	case reflect.Struct:
		if v.Type() == timeType {
			return decodeTime(path, raw, v)
		}
		return s.decodeStruct(path, raw, v)
	case reflect.Slice:
		return s.decodeList(path, raw, v)
	case reflect.Map:
		return s.decodeMap(path, raw, v)
	default:
		return decodeScalar(path, raw, v)
	}
}

func decodeTime(path string, raw any, v reflect.Value) error {
	n, ok := raw.(json.Number)
	if !ok {
		return &FieldError{Path: path, Msg: "must be a timestamp in epoch seconds"}
	}
	f, err := n.Float64()
	if err != nil {
		return &FieldError{Path: path, Msg: err.Error()}
	}
	v.Set(reflect.ValueOf(time.UnixMilli(int64(math.Round(f * 1000))).UTC()))
	return nil
}

func (s *Service) decodeList(path string, raw any, v reflect.Value) error {
	list, ok := raw.([]any)
	if !ok {
		return &FieldError{Path: path, Msg: "must be a list"}
	}
	out := reflect.MakeSlice(v.Type(), len(list), len(list))
	for i, item := range list {
		if err := s.decode(fmt.Sprintf("%s[%d]", path, i), item, out.Index(i)); err != nil {
			return err
		}
	}
	v.Set(out)
	return nil
}

func (s *Service) decodeMap(path string, raw any, v reflect.Value) error {
	m, ok := raw.(map[string]any)
	if !ok {
		return &FieldError{Path: path, Msg: "must be an object"}
	}
	out := reflect.MakeMapWithSize(v.Type(), len(m))
	for k, item := range m {
		val := reflect.New(v.Type().Elem()).Elem()
		if err := s.decode(child(path, k), item, val); err != nil {
			return err
		}
		out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), val)
	}
	v.Set(out)
	return nil
}

func (s *Service) decodeStruct(path string, raw any, v reflect.Value) error {
	m, ok := raw.(map[string]any)
	if !ok {
		return &FieldError{Path: path, Msg: "must be an object"}
	}
	fields := map[string]int{}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && !f.Anonymous {
			fields[s.memberName(f.Name)] = i
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first error is the same on every call
	for _, k := range keys {
		i, ok := fields[k]
		if !ok {
			return &FieldError{Path: child(path, k), Msg: "unknown member: " + s.Name + "'s model has no such field here"}
		}
		if err := s.decode(child(path, k), m[k], v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

func decodeScalar(path string, raw any, v reflect.Value) error {
	switch v.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return &FieldError{Path: path, Msg: "must be a string"}
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return &FieldError{Path: path, Msg: "must be a boolean"}
		}
		v.SetBool(b)
	case reflect.Int32, reflect.Int64, reflect.Int:
		n, ok := raw.(json.Number)
		if !ok {
			return &FieldError{Path: path, Msg: "must be a number"}
		}
		i, err := n.Int64()
		if err != nil || v.OverflowInt(i) {
			return &FieldError{Path: path, Msg: fmt.Sprintf("must be an integer of %d bits", v.Type().Bits())}
		}
		v.SetInt(i)
	case reflect.Float64, reflect.Float32:
		n, ok := raw.(json.Number)
		if !ok {
			return &FieldError{Path: path, Msg: "must be a number"}
		}
		f, err := n.Float64()
		if err != nil {
			return &FieldError{Path: path, Msg: err.Error()}
		}
		v.SetFloat(f)
	default:
		return &FieldError{Path: path, Msg: "this kind of member (" + strings.ToLower(v.Kind().String()) + ") is not supported by Berth's API"}
	}
	return nil
}
