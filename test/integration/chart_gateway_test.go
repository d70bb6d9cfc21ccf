package integration

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The chart's agents' read gateway (internal/gateway): every manager replica serves
// it behind a Service, with a certificate the chart makes or an existing Secret; the
// agent DaemonSet dials that Service and checks it against a CA in a ConfigMap.

const (
	gatewayCertDir = "/etc/berth/gateway"
	// testCA is a CA certificate (PEM, self-signed) for gateway.tls.caBundle; the
	// chart only publishes it, so any certificate does.
	testCA = `-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIUUj2njWQ58EV7Bd6aE+ru9dkazUwwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPZ2F0ZXdheS10ZXN0LWNhMCAXDTI2MTIwNzA1MzY1M1oYDzIx
MjYxMTEzMDUzNjUzWjAaMRgwFgYDVQQDDA9nYXRld2F5LXRlc3QtY2EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARXzwzjV+fOtb5kNWYdufSn2smrribJE3//SfGY
yPRkjQmSDb/Id/gLldTPacDdzmFMakKHbneg/I1S2nfLThGXo1MwUTAdBgNVHQ4E
FgQUWETpDxScwRlqRFoEFNOt90AKmAowHwYDVR0jBBgwFoAUWETpDxScwRlqRFoE
FNOt90AKmAowDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiA9gxPl
Uvj2hUkI6fIy12BW+u+C4ojF8xqqd/DGJoDK6QIhAIGO3a1zMY0IyYQ2/z7XcgJL
bntgSWUgkodnBA7uepDu
-----END CERTIFICATE-----
`
)

// gatewayWant is what one value set must render of the gateway; zero fields take the
// chart's defaults.
type gatewayWant struct {
	port        int32
	serviceType corev1.ServiceType
	// existingSecret is gateway.tls.existingSecret: the chart makes no Secret and
	// publishes testCA.
	existingSecret string
}

// checkGateway: the Service selects the managers' gateway port; every manager serves
// on it with the Secret's certificate and the agents' user of the admission policy;
// the agents dial the Service with the ConfigMap's CA; the certificate the chart
// makes names the Service and verifies against that CA.
func checkGateway(t *testing.T, c chartObjects, want chartWant) {
	port := cmp.Or(want.gateway.port, 9444)
	d := typed[appsv1.Deployment](t, c.get("Deployment", releaseName+"-manager"))
	svc := typed[corev1.Service](t, c.get("Service", releaseName+"-gateway"))
	if got := cmp.Or(svc.Spec.Type, corev1.ServiceTypeClusterIP); got != cmp.Or(want.gateway.serviceType, corev1.ServiceTypeClusterIP) {
		t.Errorf("gateway Service type = %s, want %s", got, cmp.Or(want.gateway.serviceType, corev1.ServiceTypeClusterIP))
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the gateway Service's selector %v does not select the manager's pods", svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != port || svc.Spec.Ports[0].TargetPort.String() != "gateway" {
		t.Errorf("gateway Service ports = %+v, want %d targeting the container port gateway", svc.Spec.Ports, port)
	}
	checkManagerGateway(t, c, d.Spec.Template.Spec, port, want.gateway)
	ca := checkGatewayCA(t, c, want.gateway)
	if want.agent {
		checkAgentGateway(t, c, svc, port)
	}
	if want.gateway.existingSecret == "" {
		checkGatewayCertificate(t, c, ca)
	} else if s := c.find("Secret", releaseName+"-gateway-tls"); s != nil {
		t.Errorf("gateway.tls.existingSecret still renders the Secret %s", s.GetName())
	}
}

// checkManagerGateway: the gateway's flags, its port, the Secret mounted read-only
// at its certificate directory, and the DaemonSet user the admission policy names.
func checkManagerGateway(t *testing.T, c chartObjects, pod corev1.PodSpec, port int32, want gatewayWant) {
	ctr := pod.Containers[0]
	if got := flagValue(ctr.Args, "--gateway-bind-address"); got != fmt.Sprintf(":%d", port) {
		t.Errorf("manager --gateway-bind-address = %q, want :%d", got, port)
	}
	if !slices.ContainsFunc(ctr.Ports, func(p corev1.ContainerPort) bool { return p.Name == "gateway" && p.ContainerPort == port }) {
		t.Errorf("manager ports %+v lack gateway %d", ctr.Ports, port)
	}
	if got := flagValue(ctr.Args, "--gateway-cert-dir"); got != gatewayCertDir {
		t.Errorf("manager --gateway-cert-dir = %q, want %s", got, gatewayCertDir)
	}
	secret := cmp.Or(want.existingSecret, releaseName+"-gateway-tls")
	i := slices.IndexFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == gatewayCertDir })
	j := -1
	if i >= 0 {
		j = slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == ctr.VolumeMounts[i].Name })
	}
	switch {
	case i < 0:
		t.Errorf("the manager mounts nothing at %s", gatewayCertDir)
	case !ctr.VolumeMounts[i].ReadOnly:
		t.Errorf("the manager's gateway certificate is mounted writable")
	case j < 0 || pod.Volumes[j].Secret == nil || pod.Volumes[j].Secret.SecretName != secret:
		t.Errorf("the manager's %s is not the Secret %s: %+v", gatewayCertDir, secret, pod.Volumes)
	}
	user := flagValue(ctr.Args, "--gateway-daemonset-user")
	if wantUser := "system:serviceaccount:" + c.ns + ":" + releaseName + "-agent"; user != wantUser {
		t.Errorf("manager --gateway-daemonset-user = %q, want the agent ServiceAccount's user %q", user, wantUser)
	}
	if policyUser := admissionDaemonSetUser(t, c); policyUser != user {
		t.Errorf("the admission policy's DaemonSet user %q differs from the gateway's %q", policyUser, user)
	}
}

var policyUserRE = regexp.MustCompile(`username == '(system:serviceaccount:[^']+)'`)

// admissionDaemonSetUser is the DaemonSet user the rendered admission policy admits.
func admissionDaemonSetUser(t *testing.T, c chartObjects) string {
	t.Helper()
	data, err := json.Marshal(c.get("ValidatingAdmissionPolicy", releaseName+"-agent").Object)
	if err != nil {
		t.Fatal(err)
	}
	m := policyUserRE.FindSubmatch(data)
	if m == nil {
		t.Fatalf("the admission policy names no DaemonSet user (%s)", policyUserRE)
	}
	return string(m[1])
}

// checkGatewayCA returns the CA the ConfigMap publishes for the agents: testCA with
// an existing Secret.
func checkGatewayCA(t *testing.T, c chartObjects, want gatewayWant) string {
	cm := typed[corev1.ConfigMap](t, c.get("ConfigMap", releaseName+"-gateway-ca"))
	ca := cm.Data["ca.crt"]
	if want.existingSecret != "" && ca != testCA {
		t.Errorf("the gateway CA ConfigMap holds %q, want gateway.tls.caBundle", ca)
	}
	if block, _ := pem.Decode([]byte(ca)); block == nil || block.Type != "CERTIFICATE" {
		t.Errorf("the gateway CA ConfigMap's ca.crt is not a PEM certificate: %q", ca)
	}
	return ca
}

// checkAgentGateway: the agent dials the Service by its name in the release
// namespace, on its port, resolves it with the cluster's DNS, and reads the CA from
// the ConfigMap mounted at --gateway-ca-file.
func checkAgentGateway(t *testing.T, c chartObjects, svc *corev1.Service, port int32) {
	ds := typed[appsv1.DaemonSet](t, c.get("DaemonSet", releaseName+"-agent"))
	pod := ds.Spec.Template.Spec
	ctr := pod.Containers[slices.IndexFunc(pod.Containers, func(ctr corev1.Container) bool { return ctr.Name == "agent" })]
	u, err := url.Parse(flagValue(ctr.Args, "--gateway-url"))
	if err != nil {
		t.Fatalf("agent --gateway-url: %v", err)
	}
	if wantHost := fmt.Sprintf("%s.%s.svc:%d", svc.Name, svc.Namespace, port); u.Scheme != "https" || u.Host != wantHost || svc.Namespace != c.ns {
		t.Errorf("agent --gateway-url = %s, want https://%s (the Service %s/%s)", u, wantHost, svc.Namespace, svc.Name)
	}
	if pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("agent dnsPolicy = %s: in the node's network only %s resolves the gateway's Service name", pod.DNSPolicy, corev1.DNSClusterFirstWithHostNet)
	}
	caFile := flagValue(ctr.Args, "--gateway-ca-file")
	i := slices.IndexFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == path.Dir(caFile) })
	if i < 0 || path.Base(caFile) != "ca.crt" {
		t.Fatalf("agent --gateway-ca-file %q is not ca.crt of a mounted volume: %+v", caFile, ctr.VolumeMounts)
	}
	j := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == ctr.VolumeMounts[i].Name })
	if j < 0 || pod.Volumes[j].ConfigMap == nil || pod.Volumes[j].ConfigMap.Name != releaseName+"-gateway-ca" {
		t.Errorf("agent %s is not the ConfigMap %s-gateway-ca: %+v", path.Dir(caFile), releaseName, pod.Volumes)
	}
}

// checkGatewayCertificate: the Secret the chart makes is a kubernetes.io/tls pair
// whose certificate serves the Service's DNS names and verifies against ca, and
// holds ca as ca.crt.
func checkGatewayCertificate(t *testing.T, c chartObjects, ca string) {
	s := typed[corev1.Secret](t, c.get("Secret", releaseName+"-gateway-tls"))
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("gateway Secret type = %s, want %s", s.Type, corev1.SecretTypeTLS)
	}
	if string(s.Data["ca.crt"]) != ca {
		t.Errorf("the gateway Secret's ca.crt differs from the ConfigMap's")
	}
	pair, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
	if err != nil {
		t.Fatalf("the gateway Secret's tls.crt and tls.key: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(ca)) {
		t.Fatalf("the gateway CA is not PEM: %q", ca)
	}
	svc := releaseName + "-gateway"
	for _, name := range []string{svc, svc + "." + c.ns, svc + "." + c.ns + ".svc", svc + "." + c.ns + ".svc.cluster.local"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("the gateway certificate does not serve %s: %v", name, err)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: svc + ".other.svc", Roots: roots}); err == nil {
		t.Errorf("the gateway certificate serves another namespace's name; SANs %q", pair.Leaf.DNSNames)
	}
}

// TestHelmChartRefusesBadGatewayValues: an existing Secret without its CA, or a CA
// without the Secret, fail the render naming the value.
func TestHelmChartRefusesBadGatewayValues(t *testing.T) {
	tests := []struct {
		name, values, wantErr string
	}{
		{"existing Secret without CA", "gateway: {tls: {existingSecret: gw-tls}}", "gateway.tls.caBundle"},
		{"existing Secret with a CA not PEM", "gateway: {tls: {existingSecret: gw-tls, caBundle: secret}}", "gateway.tls.caBundle"},
		{"CA without existing Secret", "gateway: {tls: {caBundle: " + fmt.Sprintf("%q", testCA) + "}}", "gateway.tls.existingSecret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkHelmRefuses(t, tc.values, tc.wantErr) })
	}
}

// TestHelmChartKeepsGatewayCertificate renders against the test apiserver (helm's
// lookup sees it, as on `helm upgrade`): the Secret of an earlier release is kept,
// the agents' CA and checksum with it, until the certificate's names change.
func TestHelmChartKeepsGatewayCertificate(t *testing.T) {
	ns := env.Namespace(t)
	render := func(values string) chartObjects {
		out := renderChart(t, ns, values, "--dry-run=server", "--kubeconfig", env.Kubeconfig)
		return chartObjects{t: t, ns: ns, objs: decodeDocuments(t, out)}
	}
	secretName := releaseName + "-gateway-tls"
	first := render("")
	secret := first.get("Secret", secretName)
	if err := env.Client.Create(t.Context(), secret); err != nil {
		t.Fatalf("creating the first render's Secret: %v", err)
	}

	again := render("")
	if got, want := again.get("Secret", secretName).Object["data"], secret.Object["data"]; !equalJSON(t, got, want) {
		t.Errorf("an upgrade made a new gateway certificate; want the existing Secret's data kept")
	}
	if got, want := again.get("ConfigMap", releaseName+"-gateway-ca").Object["data"], first.get("ConfigMap", releaseName+"-gateway-ca").Object["data"]; !equalJSON(t, got, want) {
		t.Errorf("an upgrade changed the agents' gateway CA")
	}
	checksum := func(c chartObjects) string {
		return typed[appsv1.DaemonSet](t, c.get("DaemonSet", releaseName+"-agent")).Spec.Template.Annotations["ecs.berth.dev/gateway-ca-checksum"]
	}
	if checksum(again) == "" || checksum(again) != checksum(first) {
		t.Errorf("agent CA checksum %q after an upgrade, want the first's %q", checksum(again), checksum(first))
	}

	renamed := render("gateway: {tls: {extraDNSNames: [gateway.example.com]}}")
	if equalJSON(t, renamed.get("Secret", secretName).Object["data"], secret.Object["data"]) {
		t.Fatalf("a new name in gateway.tls.extraDNSNames kept the old certificate")
	}
	if checksum(renamed) == checksum(first) {
		t.Errorf("a new gateway CA kept the agents' CA checksum")
	}
	checkGatewayCertificate(t, renamed, renamed.get("ConfigMap", releaseName+"-gateway-ca").Object["data"].(map[string]any)["ca.crt"].(string))
	pair := typed[corev1.Secret](t, renamed.get("Secret", secretName))
	block, _ := pem.Decode(pair.Data["tls.crt"])
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cert.DNSNames, "gateway.example.com") {
		t.Errorf("the new gateway certificate's names %q lack gateway.tls.extraDNSNames", cert.DNSNames)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}
