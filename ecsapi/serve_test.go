package ecsapi

import (
	"strings"
	"testing"
)

func TestRunOptionsValidate(t *testing.T) {
	ok := RunOptions{Config: Config{Region: "r", AccountID: "000000000000"}, Auth: AuthSigV4, CredentialsNamespace: "x"}
	for name, edit := range map[string]func(*RunOptions){
		"--region":                func(o *RunOptions) { o.Region = "" },
		"--account-id":            func(o *RunOptions) { o.AccountID = "12" },
		"--auth":                  func(o *RunOptions) { o.Auth = "basic" },
		"--credentials-namespace": func(o *RunOptions) { o.CredentialsNamespace = "" },
		"--namespace":             func(o *RunOptions) { o.Auth = AuthNone },
		"--tls-cert-file":         func(o *RunOptions) { o.TLSKeyFile = "k.pem" },
	} {
		o := ok
		edit(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}
