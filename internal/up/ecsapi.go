package up

// `berth up` runs Berth's ECS API (`berth api`) on loopback with SigV4, as it runs in
// a cluster: its own identity bound to the generated berth-api roles, the calls made
// as the credential's user through impersonation. It makes one credential, for
// ECSUser in the samples' namespace, and writes an AWS configuration for it
// (awsconfig), so that the printed exports alone make `aws ecs list-clusters` work.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	berthconfig "github.com/berthdev/berth/config"
	"github.com/berthdev/berth/ecsapi/auth"
	"github.com/berthdev/berth/internal/up/awsconfig"
)

const (
	// APIUser is `berth api`'s own identity, bound to the generated ClusterRole and
	// Role berth-api (config/rbac/api/role.yaml).
	APIUser = "berth-api"
	// ECSUser is the Kubernetes user of the ECS API credential `up` makes, bound
	// cluster-wide to the ClusterRole berth-ecs-user: it may use every action in
	// every namespace, and create clusters and drain instances (cluster-scoped).
	ECSUser = "berth-ecs-user"
	// ECSUserRole is the ClusterRole of config/rbac/api/user_role.yaml.
	ECSUserRole = "berth-ecs-user"
	// ECSUserServiceAccount, in CredentialsNamespace, is bound with ECSUser to
	// berth-ecs-user: `kubectl create token` makes tokens for it, which the agent's
	// /v1/tasks and /v1/logs take (an admin's client certificate is not a token).
	ECSUserServiceAccount = "berth-ecs-user"
	// ECSRegion and ECSAccountID are what the API answers as: the region and
	// account of its ARNs, and the only region it accepts signatures for.
	ECSRegion    = "us-east-1"
	ECSAccountID = "000000000000"
	// CredentialsNamespace holds the credential Secrets; it is `berth api`'s default
	// --credentials-namespace and the namespace of the generated Role berth-api.
	CredentialsNamespace = "berth-system"
)

// managedBy labels the credential Secret `up` makes, so the next `up` reuses it
// instead of minting another key.
const managedBy = "app.kubernetes.io/managed-by"

// installAPIRBAC applies the API's generated roles and berth-ecs-user, and binds
// them: berth-api to APIUser (the Role in CredentialsNamespace), berth-ecs-user to
// ECSUser and to the ServiceAccount ECSUserServiceAccount cluster-wide.
func installAPIRBAC(ctx context.Context, c client.Client) error {
	objs, err := embeddedObjects(berthconfig.RBAC, berthconfig.APIRole)
	if err != nil {
		return err
	}
	userRole, err := decodeObjects(strings.NewReader(string(berthconfig.APIUserRole)))
	if err != nil {
		return fmt.Errorf("%s: %w", "rbac/api/user_role.yaml", err)
	}
	objs = append(objs, userRole...)
	sa, err := toUnstructured(&corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: ECSUserServiceAccount, Namespace: CredentialsNamespace},
	})
	if err != nil {
		return err
	}
	objs = append(objs, sa)
	for _, u := range objs {
		if u.GetKind() == "Role" {
			u.SetNamespace(CredentialsNamespace)
		}
	}
	apiSubject := rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: APIUser}
	bindings := []client.Object{
		binding("berth-api", "berth-api-up", apiSubject),
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: "berth-api-up", Namespace: CredentialsNamespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "berth-api"},
			Subjects:   []rbacv1.Subject{apiSubject},
		},
		binding(ECSUserRole, "berth-ecs-user-up", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: ECSUser},
			rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: CredentialsNamespace, Name: ECSUserServiceAccount}),
	}
	for _, b := range bindings {
		u, err := toUnstructured(b)
		if err != nil {
			return err
		}
		objs = append(objs, u)
	}
	return apply(ctx, c, objs...)
}

// ensureCredential returns the credential of ECSUser in namespace that an earlier
// `up` made, or makes one. The Secret is the only copy of the key: reusing it keeps
// the key stable across restarts, and never leaves a second one behind.
func ensureCredential(ctx context.Context, c client.Client, namespace string) (*auth.Credential, error) {
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace(CredentialsNamespace),
		client.MatchingLabels{auth.LabelCredential: "true", managedBy: FieldManager}); err != nil {
		return nil, fmt.Errorf("listing the ECS API credentials in %s: %w", CredentialsNamespace, err)
	}
	slices.SortFunc(secrets.Items, func(a, b corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
	for i := range secrets.Items {
		cred, err := auth.FromSecret(&secrets.Items[i])
		if err == nil && cred != nil && cred.Namespace == namespace && cred.User == ECSUser && len(cred.Groups) == 0 {
			return cred, nil
		}
	}
	cred, err := auth.NewCredential(namespace, ECSUser, nil)
	if err != nil {
		return nil, err
	}
	secret := cred.Secret(CredentialsNamespace)
	secret.Labels[managedBy] = FieldManager
	if err := c.Create(ctx, secret); err != nil {
		return nil, fmt.Errorf("storing the ECS API credential in %s: %w", CredentialsNamespace, err)
	}
	return cred, nil
}

// startAPI makes the credential (so the API's first read of the Secrets has it),
// starts `berth api` on a free loopback port, and writes the AWS configuration.
func (s *session) startAPI(ctx context.Context) error {
	cred, err := ensureCredential(ctx, s.admin, s.o.Namespace)
	if err != nil {
		return err
	}
	port, err := freePort(0)
	if err != nil {
		return err
	}
	s.apiURL = "http://" + hostPort(port)
	if err := s.launch(ctx, compAPI, s.berth, apiArgs(s.l, port), nil,
		httpOK(&http.Client{Timeout: 2 * time.Second}, s.apiURL+"/healthz")); err != nil {
		return err
	}
	files, err := awsconfig.Write(s.l.awsDir(), awsconfig.Endpoint{
		URL: s.apiURL, Region: ECSRegion, AccessKeyID: cred.AccessKeyID, SecretAccessKey: cred.SecretAccessKey,
	})
	if err != nil {
		return fmt.Errorf("writing the AWS configuration: %w", err)
	}
	s.aws = files
	return nil
}

func apiArgs(l layout, port int) []string {
	return []string{"api",
		"--kubeconfig=" + l.kubeconfig(kubeconfigAPI),
		"--listen=" + hostPort(port),
		"--auth=sigv4",
		"--credentials-namespace=" + CredentialsNamespace,
		"--region=" + ECSRegion,
		"--account-id=" + ECSAccountID,
	}
}
