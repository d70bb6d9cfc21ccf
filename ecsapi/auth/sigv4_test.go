package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berthdev/berth/ecsapi/wire"
)

var (
	testNow  = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	testCred = &Credential{AccessKeyID: "BKIATESTTESTTESTTEST", SecretAccessKey: "s3cr3t/s3cr3t+s3cr3t", Namespace: "team-a", User: "alice"}
)

func lookup(_ context.Context, id string) (*Credential, error) {
	if id == testCred.AccessKeyID {
		return testCred, nil
	}
	return nil, nil
}

type signOpts struct {
	secret     string
	accessKey  string
	at         time.Time
	region     string
	service    string
	signLength bool // the Go SDK signs content-length; botocore does not
	userAgent  bool // a header the SDK's signer never signs
}

// signed builds a request signed by the SDK's signer, as a client would send it.
func signed(t *testing.T, body string, o signOpts) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:8080/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters")
	if o.signLength {
		r.ContentLength = int64(len(body))
	}
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: o.accessKey, SecretAccessKey: o.secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), o.service, o.region, o.at); err != nil {
		t.Fatal(err)
	}
	if o.userAgent {
		// Re-sign by hand is impossible for the SDK; claim user-agent was signed.
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=", "SignedHeaders=user-agent;", 1))
		r.Header.Set("User-Agent", "test")
	}
	r.ContentLength = int64(len(body))
	return r
}

func defaults() signOpts {
	return signOpts{secret: testCred.SecretAccessKey, accessKey: testCred.AccessKeyID, at: testNow, region: "eu-west-3", service: "ecs", signLength: true}
}

func TestVerify(t *testing.T) {
	const body = `{"maxResults":10}`
	cases := []struct {
		name    string
		opts    func(*signOpts)
		tamper  func(r *http.Request) string // returns the body sent
		want    string                       // ECS error type, "" for accepted
		message string
	}{
		{name: "Go SDK style (content-length signed)"},
		{name: "botocore style (content-length not signed)", opts: func(o *signOpts) { o.signLength = false }},
		{name: "clock 4 minutes behind", opts: func(o *signOpts) { o.at = testNow.Add(-4 * time.Minute) }},
		{name: "body changed", tamper: func(*http.Request) string { return `{"maxResults":11}` }, want: wire.InvalidSignatureException, message: "does not match"},
		{name: "signed header changed", tamper: func(r *http.Request) string {
			r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster")
			return body
		}, want: wire.InvalidSignatureException},
		{name: "host changed", tamper: func(r *http.Request) string { r.Host = "127.0.0.1:9999"; return body }, want: wire.InvalidSignatureException},
		{name: "wrong secret", opts: func(o *signOpts) { o.secret = "guess" }, want: wire.InvalidSignatureException},
		{name: "unknown key", opts: func(o *signOpts) { o.accessKey = "BKIANOBODYNOBODYNOBO" }, want: wire.UnrecognizedClientException},
		{name: "expired", opts: func(o *signOpts) { o.at = testNow.Add(-6 * time.Minute) }, want: wire.InvalidSignatureException, message: "Signature expired"},
		{name: "from the future", opts: func(o *signOpts) { o.at = testNow.Add(6 * time.Minute) }, want: wire.InvalidSignatureException, message: "Signature expired"},
		{name: "other region", opts: func(o *signOpts) { o.region = "us-east-1" }, want: wire.InvalidSignatureException, message: "region"},
		{name: "other service", opts: func(o *signOpts) { o.service = "s3" }, want: wire.InvalidSignatureException, message: "service"},
		{name: "header the server cannot sign", opts: func(o *signOpts) { o.userAgent = true }, want: wire.InvalidSignatureException},
		{name: "no Authorization", tamper: func(r *http.Request) string { r.Header.Del("Authorization"); return body }, want: wire.MissingAuthenticationTokenException},
		{name: "not SigV4", tamper: func(r *http.Request) string { r.Header.Set("Authorization", "Basic YTpi"); return body }, want: wire.IncompleteSignatureException},
		{name: "no X-Amz-Date", tamper: func(r *http.Request) string { r.Header.Del("X-Amz-Date"); return body }, want: wire.IncompleteSignatureException},
	}
	v := &Verifier{Region: "eu-west-3", Lookup: lookup, Now: func() time.Time { return testNow }}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := defaults()
			if tc.opts != nil {
				tc.opts(&o)
			}
			r := signed(t, body, o)
			sent := body
			if tc.tamper != nil {
				sent = tc.tamper(r)
			}
			r.Body = http.NoBody
			cred, err := v.Verify(r, []byte(sent), "ecs")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if cred.User != "alice" || cred.Namespace != "team-a" {
					t.Errorf("credential %+v", cred)
				}
				return
			}
			var e *wire.Error
			if !errors.As(err, &e) || e.Type != tc.want {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
			if !strings.Contains(e.Message, tc.message) {
				t.Errorf("message %q lacks %q", e.Message, tc.message)
			}
			if strings.Contains(e.Message, testCred.SecretAccessKey) {
				t.Errorf("message leaks the secret: %q", e.Message)
			}
		})
	}
}

func TestNewCredential(t *testing.T) {
	a, err := NewCredential("ns", "bob", []string{"devs"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewCredential("ns", "bob", nil)
	if len(a.AccessKeyID) != 20 || !strings.HasPrefix(a.AccessKeyID, "BKIA") || len(a.SecretAccessKey) != 40 {
		t.Errorf("key %q / secret of %d characters", a.AccessKeyID, len(a.SecretAccessKey))
	}
	if a.AccessKeyID == b.AccessKeyID || a.SecretAccessKey == b.SecretAccessKey {
		t.Error("two credentials share a key or a secret")
	}
	s := a.Secret("berth-system")
	s.Data = map[string][]byte{}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	got, err := FromSecret(s)
	if err != nil || got == nil || got.AccessKeyID != a.AccessKeyID || got.User != "bob" || len(got.Groups) != 1 || got.Groups[0] != "devs" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	delete(s.Labels, LabelCredential)
	if got, _ := FromSecret(s); got != nil {
		t.Error("a Secret without the label is no credential")
	}
}
