package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/berthdev/berth/config"
	"github.com/berthdev/berth/ecsapi/auth"
)

// `berth api` as the benchmark runs it: SigV4 against credential Secrets, its other
// flags (the apiserver client's QPS and burst above all) at their production
// defaults.
const (
	apiCredentialsNamespace = "berth-system"
	apiRegion               = "us-east-1"
	apiUserName             = "bench-user"
)

// apiServer is `berth api` running as a child process of the berth binary, so that
// its CPU and memory are its own, and an ECS client of the AWS SDK signed with a
// credential of benchNamespace.
type apiServer struct {
	proc *child
	ecs  *ecs.Client
}

// startAPI makes a credential for a user of benchNamespace bound to the ClusterRole
// berth-ecs-user (as `berth api credentials create` and the chart's RBAC would), runs
// `berth api` and waits until it serves. Every call then pays what it pays in
// production: the signature's verification and the impersonation of the user, whose
// RBAC the apiserver checks.
func (l *lab) startAPI(ctx context.Context) (*apiServer, error) {
	cred, err := l.apiUser(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	proc, err := startChild("berth api", l.run.workFile(l.name+"-api.log"), l.run.berth, "api",
		"--kubeconfig", l.env.Kubeconfig, "--listen", addr, "--auth", "sigv4",
		"--credentials-namespace", apiCredentialsNamespace, "--region", apiRegion)
	if err != nil {
		return nil, err
	}
	l.onClose(func() error { return proc.stop(30 * time.Second) })
	endpoint := "http://" + addr
	if err := l.waitHealthy(ctx, proc, endpoint); err != nil {
		return nil, err
	}
	return &apiServer{proc: proc, ecs: ecs.New(ecs.Options{
		Region:       apiRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(cred.AccessKeyID, cred.SecretAccessKey, ""),
		// One attempt: a retry would hide a failure inside a latency.
		RetryMaxAttempts: 1,
	})}, nil
}

// apiUser stores a credential Secret for apiUserName acting in benchNamespace, and
// binds the user to berth-ecs-user there (config/rbac/api/user_role.yaml).
func (l *lab) apiUser(ctx context.Context) (*auth.Credential, error) {
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(config.APIUserRole, &role); err != nil {
		return nil, fmt.Errorf("reading the berth-ecs-user ClusterRole: %w", err)
	}
	cred, err := auth.NewCredential(benchNamespace, apiUserName, nil)
	if err != nil {
		return nil, err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ecs-" + apiUserName, Namespace: benchNamespace},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: apiUserName}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: apiCredentialsNamespace}},
		&role, binding, cred.Secret(apiCredentialsNamespace),
	} {
		if err := l.c.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return cred, nil
}

// waitHealthy waits until the server answers its health check: it listens only once
// its cache of credential Secrets has synced.
func (l *lab) waitHealthy(ctx context.Context, proc *child, endpoint string) error {
	return l.poll(ctx, 30*time.Second, 100*time.Millisecond, "berth api to serve", func() (bool, string, error) {
		if err := proc.exited(); err != nil {
			return false, "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/healthz", nil)
		if err != nil {
			return false, "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		_ = resp.Body.Close() // only the status matters
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
}
