package ecsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ecsv1alpha1 "github.com/berthdev/berth/apis/v1alpha1"
	"github.com/berthdev/berth/ecsapi/wire"
	"github.com/berthdev/berth/test/ecscorpus"
	"github.com/berthdev/berth/test/testenv"
)

const tdARN = "arn:aws:ecs:" + region + ":" + account + ":task-definition/"

// webApp is a definition with what `berth convert` maps (a secret ARN to a Secret
// key, a family that is not a Kubernetes name), tags, and members ECS defaults.
func webApp(image string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("Web_App"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String(image), Memory: aws.Int32(128),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80)}},
			Environment:  []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("prod")}},
			Secrets: []types.Secret{{Name: aws.String("DB_PASSWORD"),
				ValueFrom: aws.String("arn:aws:secretsmanager:" + region + ":" + account + ":secret:prod/db-AbC123:password::")}},
			Privileged: aws.Bool(false),
		}},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}},
	}
}

// registeredEqual fails unless every member of what was registered is in the
// described definition with the same value.
func registeredEqual(t *testing.T, in *ecs.RegisterTaskDefinitionInput, got *types.TaskDefinition) {
	t.Helper()
	if diffs := notEchoed(t, in, got); len(diffs) > 0 {
		t.Errorf("described differently from what was registered:\n%s", strings.Join(diffs, "\n"))
	}
}

// notEchoed lists the members of in (tags aside: they are beside the definition) that
// got lacks or holds with another value.
func notEchoed(t *testing.T, in *ecs.RegisterTaskDefinitionInput, got *types.TaskDefinition) []string {
	t.Helper()
	want, have := jsonOf(t, in), jsonOf(t, got)
	delete(want, "tags")
	var diffs []string
	subset("", want, have, &diffs)
	return diffs
}

func jsonOf(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := wire.ECS.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func subset(path string, want, got any, diffs *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, _ := got.(map[string]any)
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				*diffs = append(*diffs, fmt.Sprintf("%s.%s: missing, registered %v", path, k, v))
				continue
			}
			subset(path+"."+k, v, gv, diffs)
		}
	case []any:
		g, _ := got.([]any)
		if len(g) != len(w) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %d items, registered %d", path, len(g), len(w)))
			return
		}
		for i := range w {
			subset(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], diffs)
		}
	default:
		if !reflect.DeepEqual(want, got) {
			*diffs = append(*diffs, fmt.Sprintf("%s: %v, registered %v", path, got, want))
		}
	}
}

func revisionsOf(arns []string) []string {
	out := make([]string, len(arns))
	for i, a := range arns {
		out[i] = strings.TrimPrefix(a, tdARN)
	}
	return out
}

// TestTaskDefinitions drives every task definition action through the SDK: the
// registered definition described back as sent by every kind of reference, revisions
// numbered as ECS numbers them (and the one difference: the latest content again is
// the latest revision), listing with filters, order and paging, deregistration and
// deletion with ECS's failures, and the error types.
func TestTaskDefinitions(t *testing.T) {
	s := start(t)
	u := s.newUser("dev", false)
	c := s.ecs(u)
	ctx := context.Background()

	in := webApp("nginx:1.25")
	reg, err := c.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	checkRegistered(t, reg.TaskDefinition, "Web_App:1", "arn:aws:iam::"+account+":user/dev")
	registeredEqual(t, in, reg.TaskDefinition)
	if diff := cmp.Diff(in.Tags, reg.Tags, cmp.AllowUnexported(types.Tag{})); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	for _, ref := range []string{"Web_App", "Web_App:1", tdARN + "Web_App:1"} {
		d, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref),
			Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
		if err != nil {
			t.Fatalf("describe %s: %v", ref, err)
		}
		if diff := cmp.Diff(reg.TaskDefinition, d.TaskDefinition, cmp.AllowUnexported(types.TaskDefinition{}), noSmithy); diff != "" {
			t.Errorf("describe %s differs from the registration's answer (-register +describe):\n%s", ref, diff)
		}
		if len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "team" {
			t.Errorf("describe %s tags = %+v", ref, d.Tags)
		}
	}

	registerRevisions(t, c)
	listRevisions(t, c)
	deregisterAndDelete(t, c)
	refusals(t, c)

	// Another namespace is another account.
	other := s.ecs(s.newUser("other", false))
	if _, err := other.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("Web_App:2")}); apiErrorCode(err) != "ClientException" {
		t.Errorf("describe from another namespace: %v, want ClientException", err)
	}
}

var noSmithy = cmp.FilterPath(func(p cmp.Path) bool { return strings.HasSuffix(p.String(), "noSmithyDocumentSerde") }, cmp.Ignore())

func checkRegistered(t *testing.T, td *types.TaskDefinition, rev, by string) {
	t.Helper()
	if got := aws.ToString(td.TaskDefinitionArn); got != tdARN+rev {
		t.Errorf("taskDefinitionArn = %s, want %s", got, tdARN+rev)
	}
	if td.Status != types.TaskDefinitionStatusActive || aws.ToString(td.RegisteredBy) != by ||
		td.RegisteredAt == nil || time.Since(*td.RegisteredAt) > time.Minute {
		t.Errorf("status %s, registeredBy %s, registeredAt %v", td.Status, aws.ToString(td.RegisteredBy), td.RegisteredAt)
	}
	if diff := cmp.Diff([]types.Compatibility{types.CompatibilityExternal, types.CompatibilityEc2}, td.Compatibilities); diff != "" {
		t.Errorf("compatibilities (-want +got):\n%s", diff)
	}
	if c := td.ContainerDefinitions[0]; aws.ToBool(c.Essential) != true || len(c.MountPoints) != 0 || c.MountPoints == nil ||
		aws.ToInt32(c.PortMappings[0].HostPort) != 0 || c.PortMappings[0].Protocol != types.TransportProtocolTcp {
		t.Errorf("ECS's defaults missing from %+v", c)
	}
}

// registerRevisions: a new content is a new revision; the latest content again is
// the latest revision (ECS would make a new one); an older content again is a new
// revision.
func registerRevisions(t *testing.T, c *ecs.Client) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range []struct{ image, want string }{
		{"nginx:1.26", "Web_App:2"},
		{"nginx:1.26", "Web_App:2"},
		{"nginx:1.25", "Web_App:3"},
	} {
		in := webApp(tc.image)
		out, err := c.RegisterTaskDefinition(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.TaskDefinition.TaskDefinitionArn); got != tdARN+tc.want {
			t.Errorf("register %s: %s, want %s", tc.image, got, tdARN+tc.want)
		}
		registeredEqual(t, in, out.TaskDefinition)
	}
	worker := workerDef()
	out, err := c.RegisterTaskDefinition(ctx, worker)
	if err != nil {
		t.Fatal(err)
	}
	registeredEqual(t, worker, out.TaskDefinition)
	if diff := cmp.Diff([]types.Compatibility{types.CompatibilityEc2, types.CompatibilityFargate}, out.TaskDefinition.Compatibilities); diff != "" {
		t.Errorf("awsvpc compatibilities (-want +got):\n%s", diff)
	}
	if p := out.TaskDefinition.ContainerDefinitions[0].PortMappings[0]; aws.ToInt32(p.HostPort) != 8080 {
		t.Errorf("awsvpc hostPort = %d, want the container port", aws.ToInt32(p.HostPort))
	}
}

// workerDef is an awsvpc definition, Fargate's shape.
func workerDef() *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{Family: aws.String("worker"), NetworkMode: types.NetworkModeAwsvpc,
		Cpu: aws.String("256"), Memory: aws.String("512"), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("w"), Image: aws.String("busybox"),
			Command: []string{"sleep", "1"}, PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}}}}}
}

func listRevisions(t *testing.T, c *ecs.Client) {
	t.Helper()
	ctx := context.Background()
	list := func(in *ecs.ListTaskDefinitionsInput) []string {
		t.Helper()
		out, err := c.ListTaskDefinitions(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return revisionsOf(out.TaskDefinitionArns)
	}
	if diff := cmp.Diff([]string{"Web_App:1", "Web_App:2", "Web_App:3", "worker:1"}, list(&ecs.ListTaskDefinitionsInput{})); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Web_App:3", "Web_App:2", "Web_App:1"},
		list(&ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("Web_App"), Sort: types.SortOrderDesc})); diff != "" {
		t.Errorf("list DESC (-want +got):\n%s", diff)
	}
	if got := list(&ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("Web")}); len(got) != 0 {
		t.Errorf("familyPrefix is a whole family in ListTaskDefinitions, got %v", got)
	}
	var paged []string
	p := ecs.NewListTaskDefinitionsPaginator(c, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(1), Sort: types.SortOrderDesc})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.TaskDefinitionArns) != 1 {
			t.Errorf("page of %d, want 1", len(out.TaskDefinitionArns))
		}
		paged = append(paged, revisionsOf(out.TaskDefinitionArns)...)
	}
	if diff := cmp.Diff([]string{"worker:1", "Web_App:3", "Web_App:2", "Web_App:1"}, paged); diff != "" {
		t.Errorf("paged DESC (-want +got):\n%s", diff)
	}

	var families []string
	fp := ecs.NewListTaskDefinitionFamiliesPaginator(c, &ecs.ListTaskDefinitionFamiliesInput{MaxResults: aws.Int32(1)})
	for fp.HasMorePages() {
		out, err := fp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		families = append(families, out.Families...)
	}
	if diff := cmp.Diff([]string{"Web_App", "worker"}, families); diff != "" {
		t.Errorf("families (-want +got):\n%s", diff)
	}
	out, err := c.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("wo")})
	if err != nil || len(out.Families) != 1 || out.Families[0] != "worker" {
		t.Errorf("families with prefix wo: %v, %v", out, err)
	}
	if _, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(101)}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("maxResults 101: %v, want InvalidParameterException", err)
	}
}

func deregisterAndDelete(t *testing.T, c *ecs.Client) {
	t.Helper()
	ctx := context.Background()
	d, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(tdARN + "Web_App:1")})
	if err != nil {
		t.Fatal(err)
	}
	if d.TaskDefinition.Status != types.TaskDefinitionStatusInactive || d.TaskDefinition.DeregisteredAt == nil {
		t.Errorf("deregistered: status %s, deregisteredAt %v", d.TaskDefinition.Status, d.TaskDefinition.DeregisteredAt)
	}
	if _, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("worker:1")}); err != nil {
		t.Fatal(err)
	}
	listed := func(status types.TaskDefinitionStatus) []string {
		out, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{Status: status})
		if err != nil {
			t.Fatal(err)
		}
		return revisionsOf(out.TaskDefinitionArns)
	}
	if diff := cmp.Diff([]string{"Web_App:1", "worker:1"}, listed(types.TaskDefinitionStatusInactive)); diff != "" {
		t.Errorf("INACTIVE (-want +got):\n%s", diff)
	}
	fams, err := c.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusInactive})
	if err != nil || fmt.Sprint(fams.Families) != "[worker]" {
		t.Errorf("INACTIVE families: %v, %v", fams, err)
	}
	// A bare family is its latest ACTIVE revision: worker has none left.
	if _, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("worker")}); apiErrorCode(err) != "ClientException" {
		t.Errorf("describe a family without ACTIVE revisions: %v, want ClientException", err)
	}

	del, err := c.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{
		"Web_App:1", "Web_App:2", "nope:1", "arn:aws:ecs:" + region + ":" + account + ":cluster/x"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.TaskDefinitions) != 1 || del.TaskDefinitions[0].Status != types.TaskDefinitionStatusDeleteInProgress ||
		del.TaskDefinitions[0].DeleteRequestedAt == nil {
		t.Errorf("deleted %+v", del.TaskDefinitions)
	}
	var reasons []string
	for _, f := range del.Failures {
		reasons = append(reasons, strings.TrimPrefix(aws.ToString(f.Arn), tdARN)+": "+aws.ToString(f.Reason))
	}
	want := []string{
		"Web_App:2: The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
		"nope:1: The specified task definition does not exist. Specify a valid account, family, revision and try again.",
		"arn:aws:ecs:" + region + ":" + account + ":cluster/x: The specified task definition identifier is invalid. Specify a valid name or ARN and try again.",
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if _, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("Web_App:1")}); apiErrorCode(err) != "ClientException" {
		t.Errorf("deregister a revision being deleted: %v, want ClientException", err)
	}
	// Nothing uses revision 1: the controller deletes it.
	testenv.Eventually(t, "Web_App:1 deleted", func() error {
		_, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("Web_App:1")})
		if apiErrorCode(err) != "ClientException" {
			return fmt.Errorf("describe Web_App:1: %w", err)
		}
		return nil
	})
	if _, err := c.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: make([]string, 11)}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("11 task definitions: %v, want InvalidParameterException", err)
	}
	// The deregistered latest content registered again is that revision, ACTIVE again
	// (ECS would make worker:2).
	again, err := c.RegisterTaskDefinition(ctx, workerDef())
	if err != nil {
		t.Fatal(err)
	}
	if td := again.TaskDefinition; aws.ToString(td.TaskDefinitionArn) != tdARN+"worker:1" || td.Status != types.TaskDefinitionStatusActive || td.DeregisteredAt != nil {
		t.Errorf("worker registered again: %s %s deregisteredAt %v", aws.ToString(td.TaskDefinitionArn), td.Status, td.DeregisteredAt)
	}
}

func refusals(t *testing.T, c *ecs.Client) {
	t.Helper()
	ctx := context.Background()
	_, err := c.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("missing")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ClientException" || ae.ErrorMessage() != "Unable to describe task definition." {
		t.Errorf("describe missing: %v", err)
	}
	firelens := webApp("nginx:1")
	firelens.ContainerDefinitions[0].FirelensConfiguration = &types.FirelensConfiguration{Type: types.FirelensConfigurationTypeFluentbit}
	cycle := webApp("nginx:1")
	cycle.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("app"), Condition: types.ContainerConditionStart}}
	long := webApp("nginx:1")
	long.Family = aws.String(strings.Repeat("f", 64))
	badTag := webApp("nginx:1")
	badTag.Tags = []types.Tag{{Key: aws.String("aws:reserved"), Value: aws.String("x")}}
	for name, tc := range map[string]struct {
		in    *ecs.RegisterTaskDefinitionInput
		field string
	}{
		"firelens":       {firelens, "containerDefinitions[0].firelensConfiguration"},
		"self-dependent": {cycle, "dependsOn"},
		"long family":    {long, "family"},
		"reserved tag":   {badTag, "tags"},
	} {
		_, err := c.RegisterTaskDefinition(ctx, tc.in)
		if apiErrorCode(err) != "InvalidParameterException" || !errors.As(err, &ae) || !strings.Contains(ae.ErrorMessage(), tc.field) {
			t.Errorf("register %s: %v, want InvalidParameterException naming %s", name, err, tc.field)
		}
	}
	for ref, code := range map[string]string{
		"Web_App":                     "InvalidParameterException", // no revision
		"arn:aws:ecs:us-east-1:1:x/y": "InvalidParameterException",
		"nope:3":                      "ClientException",
	} {
		if _, err := c.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(ref)}); apiErrorCode(err) != code {
			t.Errorf("deregister %s: %v, want %s", ref, err, code)
		}
	}
	if _, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{Status: "GONE"}); apiErrorCode(err) != "InvalidParameterException" {
		t.Errorf("status GONE: %v, want InvalidParameterException", err)
	}
}

// TestTaskDefinitionCorpus registers every real-world definition of the corpus
// through the SDK, as `aws ecs register-task-definition --cli-input-json` would send
// it, and describes it back: every member sent must be answered with the same value,
// or the definition is refused with InvalidParameterException naming a field. The
// records the API keeps beside the spec must hold only what the spec cannot say (a
// secret's ARN, a member the apiserver defaulted, a false or empty member), which
// proves the spec itself is converted back.
func TestTaskDefinitionCorpus(t *testing.T) {
	s := start(t)
	u := s.newUser("corpus", false)
	c := s.ecs(u)
	files := ecscorpus.Files(t)
	var echoed, refused, undecodable int
	refusedBy := map[string]int{}
	for _, file := range files {
		base := filepath.Base(file)
		t.Run(strings.TrimSuffix(base, ".json"), func(t *testing.T) {
			in, err := corpusInput(t, file)
			if err != nil {
				// The SDK's types cannot hold it (a number where ECS's model has a
				// string): the aws CLI refuses it before sending, naming the member.
				var fe *wire.FieldError
				if !errors.As(err, &fe) || fe.Path == "" {
					t.Fatalf("not decodable, without a member named: %v", err)
				}
				undecodable++
				refusedBy["(not sent) "+fe.Path+": "+fe.Msg]++
				return
			}
			out, err := c.RegisterTaskDefinition(context.Background(), in)
			if err != nil {
				refused++
				refusedBy[refusal(t, base, err)]++
				return
			}
			if why, ok := ecscorpus.InvalidInECS[base]; ok {
				t.Fatalf("registered, but ECS refuses it (%s)", why)
			}
			d, err := c.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: out.TaskDefinition.TaskDefinitionArn})
			if err != nil {
				t.Fatal(err)
			}
			registeredEqual(t, in, d.TaskDefinition)
			checkRecords(t, u.Namespace)
			echoed++
		})
	}
	keys := make([]string, 0, len(refusedBy))
	for k := range refusedBy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("refused %d× %s", refusedBy[k], k)
	}
	t.Logf("%d of %d corpus definitions registered and described back equal; %d refused by the API naming fields; %d not decodable into the SDK's input",
		echoed, len(files), refused, undecodable)
}

// registrationOnly are the members ECS adds when it registers a definition: those of
// its TaskDefinition that RegisterTaskDefinition does not take.
var registrationOnly = func() map[string]bool {
	in := reflect.TypeOf(ecs.RegisterTaskDefinitionInput{})
	out := map[string]bool{}
	td := reflect.TypeOf(types.TaskDefinition{})
	for i := range td.NumField() {
		f := td.Field(i)
		if _, ok := in.FieldByName(f.Name); !ok && f.IsExported() {
			out[strings.ToLower(f.Name[:1])+f.Name[1:]] = true
		}
	}
	return out
}()

// corpusInput reads a corpus file as RegisterTaskDefinition's input: the output of
// describe-task-definition is unwrapped (its tags beside the definition moved in) and
// the members ECS adds on registration are removed, as a user does before
// --cli-input-json.
func corpusInput(t *testing.T, file string) (*ecs.RegisterTaskDefinitionInput, error) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(ecscorpus.FillTemplate(t, data), &doc); err != nil {
		t.Fatal(err)
	}
	if inner, ok := doc["taskDefinition"].(map[string]any); ok {
		if tags, ok := doc["tags"]; ok {
			inner["tags"] = tags
		}
		doc = inner
	}
	for k := range doc {
		if registrationOnly[k] {
			delete(doc, k)
		}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	in := &ecs.RegisterTaskDefinitionInput{}
	return in, wire.ECS.Unmarshal(raw, in)
}

// refusal checks a refusal is an InvalidParameterException naming a field (for the
// files ECS refuses too, the field ECS's refusal names), and says what it names.
func refusal(t *testing.T, base string, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterException" {
		t.Fatalf("refused with %v, want InvalidParameterException", err)
	}
	msg := ae.ErrorMessage()
	if why, ok := ecscorpus.InvalidInECS[base]; ok {
		if !strings.Contains(msg, strings.TrimPrefix(why, "spec.")) {
			t.Errorf("refused for %q, want a refusal naming %q as ECS's", msg, why)
		}
		return "(refused by ECS too) " + why
	}
	field, _, ok := strings.Cut(msg, ": ")
	if !ok || field == "" || strings.Contains(field, " ") {
		t.Errorf("refusal %q does not start with the field it refuses", msg)
	}
	t.Logf("refused: %s", msg)
	return field
}

// recordKinds are the members a registration record may patch: what a Secret name
// cannot say (the ARN it came from), Docker's "default" network mode, and the members
// the apiserver defaults (removed where the definition did not set them).
var (
	recordSets   = map[string]bool{"valueFrom": true, "credentialsParameter": true, "networkMode": true}
	recordUnsets = map[string]bool{"stopTimeout": true, "startPeriod": true, "logDriver": true, "essential": true,
		"protocol": true, "interval": true, "timeout": true, "retries": true, "containerPort": true}
)

// checkRecords fails when a registration record of the namespace patches anything
// else than recordKinds or a false or empty member.
func checkRecords(t *testing.T, ns string) {
	t.Helper()
	var list ecsv1alpha1.TaskDefinitionList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, td := range list.Items {
		var regs map[string]struct {
			Set []struct {
				Path  []any `json:"path"`
				Value any   `json:"value"`
			} `json:"set"`
			Unset [][]any `json:"unset"`
		}
		if err := json.Unmarshal([]byte(td.Annotations[ecsv1alpha1.AnnotationRegistrations]), &regs); err != nil {
			t.Fatalf("%s: %v", td.Name, err)
		}
		for _, r := range regs {
			for _, s := range r.Set {
				if !recordSets[fmt.Sprint(s.Path[len(s.Path)-1])] && !emptyValue(s.Value) {
					t.Errorf("%s: the record sets %v to %v: the spec lost it", td.Name, s.Path, s.Value)
				}
			}
			for _, p := range r.Unset {
				if !recordUnsets[fmt.Sprint(p[len(p)-1])] {
					t.Errorf("%s: the record removes %v: the spec added it", td.Name, p)
				}
			}
		}
	}
}

func emptyValue(v any) bool {
	switch v := v.(type) {
	case bool:
		return !v
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return v == nil
}
