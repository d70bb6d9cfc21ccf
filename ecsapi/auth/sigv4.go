// Package auth authenticates ECS API requests: it verifies AWS Signature Version 4
// by recomputing the signature with the AWS SDK's own signer over exactly the headers
// the client signed, and finds the credential (a Kubernetes Secret) that names the
// namespace and Kubernetes identity the request acts as.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berthdev/berth/ecsapi/wire"
)

// MaxClockSkew is how far a request's X-Amz-Date may be from the server's clock, as
// AWS allows: older signatures are replays or broken clocks.
const MaxClockSkew = 5 * time.Minute

// Credential is one API key pair and whom it acts as.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	// Namespace is the Kubernetes namespace the key's calls act in: its ECS account.
	Namespace string
	// User and Groups are the Kubernetes identity the server impersonates.
	User   string
	Groups []string
}

// Lookup finds the credential of an access key ID, or returns (nil, nil) when there
// is none.
type Lookup func(ctx context.Context, accessKeyID string) (*Credential, error)

// Verifier checks SigV4 signatures.
type Verifier struct {
	// Region is the only region the server answers for: a signature scoped to another
	// is refused, as AWS refuses it.
	Region string
	Lookup Lookup
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// signature is a parsed Authorization header.
type signature struct {
	accessKeyID   string
	date          string
	region        string
	service       string
	signedHeaders []string
	signature     string
}

func parseAuthorization(h string) (*signature, error) {
	const algorithm = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(h, algorithm) {
		return nil, wire.Errorf(wire.IncompleteSignatureException, "Authorization header requires the AWS4-HMAC-SHA256 algorithm")
	}
	s := &signature{}
	for _, part := range strings.Split(strings.TrimPrefix(h, algorithm), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Credential":
			scope := strings.Split(v, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return nil, wire.Errorf(wire.IncompleteSignatureException, "Credential must be ACCESS-KEY/DATE/REGION/SERVICE/aws4_request")
			}
			s.accessKeyID, s.date, s.region, s.service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			s.signedHeaders = strings.Split(v, ";")
		case "Signature":
			s.signature = v
		}
	}
	if s.accessKeyID == "" || len(s.signedHeaders) == 0 || s.signature == "" {
		return nil, wire.Errorf(wire.IncompleteSignatureException, "Authorization header requires Credential, SignedHeaders and Signature")
	}
	return s, nil
}

// Verify authenticates r, whose body has already been read, for the given signing
// service ("ecs", "application-autoscaling" or "sts"). Errors are those every AWS
// service answers: IncompleteSignature, UnrecognizedClient, InvalidSignature (wrong
// signature, wrong scope, expired); their messages
// never contain the secret or the expected signature.
func (v *Verifier) Verify(r *http.Request, body []byte, service string) (*Credential, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, wire.Errorf(wire.MissingAuthenticationTokenException, "Missing Authentication Token")
	}
	sig, err := parseAuthorization(h)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return nil, wire.Errorf(wire.IncompleteSignatureException, "X-Amz-Date header is missing or not in the ISO 8601 basic format")
	}
	if skew := now().Sub(signedAt); skew > MaxClockSkew || skew < -MaxClockSkew {
		return nil, wire.Errorf(wire.InvalidSignatureException, "Signature expired: %s is now earlier than %s (%s - 5 min.)",
			signedAt.Format("20060102T150405Z"), now().UTC().Add(-MaxClockSkew).Format("20060102T150405Z"), now().UTC().Format("20060102T150405Z"))
	}
	if sig.date != signedAt.Format("20060102") {
		return nil, wire.Errorf(wire.InvalidSignatureException, "Credential should be scoped to the date of X-Amz-Date")
	}
	if sig.region != v.Region {
		return nil, wire.Errorf(wire.InvalidSignatureException, "Credential should be scoped to a valid region, not '%s'. This endpoint serves '%s'.", sig.region, v.Region)
	}
	if sig.service != service {
		return nil, wire.Errorf(wire.InvalidSignatureException, "Credential should be scoped to correct service: '%s'.", service)
	}
	cred, err := v.Lookup(r.Context(), sig.accessKeyID)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, wire.Errorf(wire.UnrecognizedClientException, "The security token included in the request is invalid.")
	}
	want, err := expectedSignature(r, body, sig, cred, signedAt)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return nil, wire.Errorf(wire.InvalidSignatureException, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return cred, nil
}

// expectedSignature signs a copy of r that carries only the headers the client
// signed (the Host as received), with the SDK's signer, and returns its signature.
func expectedSignature(r *http.Request, body []byte, sig *signature, cred *Credential, signedAt time.Time) (string, error) {
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	c, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), nil)
	if err != nil {
		return "", wire.Errorf(wire.IncompleteSignatureException, "request URL: %v", err)
	}
	c.Host = r.Host
	for _, name := range sig.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			// The SDK's signer signs the length from ContentLength, and only then.
			c.ContentLength = int64(len(body))
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 {
				return "", wire.Errorf(wire.IncompleteSignatureException, "signed header %s is missing", name)
			}
			for _, val := range vals {
				c.Header.Add(name, val)
			}
		}
	}
	sum := sha256.Sum256(body)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = false })
	creds := aws.Credentials{AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey}
	if err := signer.SignHTTP(r.Context(), creds, c, hex.EncodeToString(sum[:]), sig.service, sig.region, signedAt); err != nil {
		return "", err
	}
	got, err := parseAuthorization(c.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	if strings.Join(got.signedHeaders, ";") != strings.Join(sig.signedHeaders, ";") {
		// A header the SDK's signer will not sign (User-Agent, say): the signature
		// cannot be reproduced, so it does not match.
		return "", wire.Errorf(wire.InvalidSignatureException, "SignedHeaders %s include a header this server does not sign (it signs %s)",
			strings.Join(sig.signedHeaders, ";"), strings.Join(got.signedHeaders, ";"))
	}
	return got.signature, nil
}
