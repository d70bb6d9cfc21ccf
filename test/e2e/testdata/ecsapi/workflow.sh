#!/usr/bin/env bash
# ECS workflows as a pipeline runs them with the aws CLI, against Berth's API with a
# real agent on containerd (test/e2e/ecsapi_test.go sets the environment: AWS, the
# CLI; CLUSTER; IMAGE; INSTANCE, the container instance's ID; WORK, a scratch dir;
# AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE as `berth up` writes them).
set -euo pipefail
step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"; }
ecs() { "$AWS" ecs "$@"; }

step "create the cluster (ECS clusters exist before anything runs in them)"
ecs create-cluster --cluster-name "$CLUSTER" >/dev/null

step "register a task definition from ECS JSON, run it, wait for it to stop, read its exit code"
cat >"$WORK/batch.json" <<JSON
{"family": "batch_job",
 "containerDefinitions": [{"name": "job", "image": "$IMAGE", "memory": 64, "essential": true,
                           "command": ["echo=working", "exit=3"]}]}
JSON
arn=$(ecs register-task-definition --cli-input-json "file://$WORK/batch.json" --query taskDefinition.taskDefinitionArn --output text)
[[ $arn == arn:aws:ecs:*:task-definition/batch_job:1 ]] || fail "registered $arn"
task=$(ecs run-task --cluster "$CLUSTER" --task-definition batch_job --started-by pipeline --query 'tasks[0].taskArn' --output text)
[[ $task =~ ^arn:aws:ecs:.*:task/$CLUSTER/[0-9a-f]{32}$ ]] || fail "task ARN $task"
ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "$task"
expect "$(ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" --query 'tasks[0].containers[0].exitCode' --output text)" 3 "exit code"
expect "$(ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" --query 'tasks[0].lastStatus' --output text)" STOPPED "last status"
expect "$(ecs list-tasks --cluster "$CLUSTER" --started-by pipeline --desired-status STOPPED --query 'length(taskArns)' --output text)" 1 "stopped tasks started by the pipeline"

step "run-task with an override, wait for it to run, stop it"
task=$(ecs run-task --cluster "$CLUSTER" --task-definition batch_job:1 \
	--overrides '{"containerOverrides":[{"name":"job","command":["echo=long","sleep=inf"]}]}' --query 'tasks[0].taskArn' --output text)
ecs wait tasks-running --cluster "$CLUSTER" --tasks "$task"
ecs stop-task --cluster "$CLUSTER" --task "$task" --reason "pipeline done" >/dev/null
ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "$task"
expect "$(ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" --query 'tasks[0].stoppedReason' --output text)" "pipeline done" "stopped reason"

step "create a service behind the core Service web and wait until it is stable"
cat >"$WORK/web.json" <<JSON
{"family": "web", "networkMode": "bridge",
 "containerDefinitions": [{"name": "web", "image": "$IMAGE", "memory": 64, "essential": true,
                           "command": ["serve=8080", "sleep=inf"],
                           "environment": [{"name": "VERSION", "value": "1"}],
                           "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}]}]}
JSON
ecs register-task-definition --cli-input-json "file://$WORK/web.json" >/dev/null
ecs create-service --cluster "$CLUSTER" --service-name web --task-definition web --desired-count 2 \
	--load-balancers loadBalancerName=web,containerName=web,containerPort=8080 >/dev/null
ecs wait services-stable --cluster "$CLUSTER" --services web
expect "$(ecs describe-services --cluster "$CLUSTER" --services web --query 'services[0].runningCount' --output text)" 2 "running count"
for port in $(ecs describe-tasks --cluster "$CLUSTER" --tasks $(ecs list-tasks --cluster "$CLUSTER" --service-name web --query 'taskArns[]' --output text) \
	--query 'tasks[].containers[0].networkBindings[0].hostPort' --output text); do
	expect "$(curl -fsS "http://127.0.0.1:$port/")" ok "task answering on host port $port"
done

step "update the service to a new revision and wait until it is stable on it"
sed 's/"value": "1"/"value": "2"/' "$WORK/web.json" >"$WORK/web2.json"
expect "$(ecs register-task-definition --cli-input-json "file://$WORK/web2.json" --query taskDefinition.revision --output text)" 2 "new revision"
ecs update-service --cluster "$CLUSTER" --service web --task-definition web:2 >/dev/null
ecs wait services-stable --cluster "$CLUSTER" --services web
expect "$(ecs describe-services --cluster "$CLUSTER" --services web --query 'services[0].deployments[0].taskDefinition' --output text)" \
	"${arn%%:task-definition/*}:task-definition/web:2" "primary deployment's task definition"
expect "$(ecs describe-services --cluster "$CLUSTER" --services web --query 'length(services[0].deployments)' --output text)" 1 "deployments when stable"

step "scale to 3"
ecs update-service --cluster "$CLUSTER" --service web --desired-count 3 >/dev/null
ecs wait services-stable --cluster "$CLUSTER" --services web
expect "$(ecs describe-services --cluster "$CLUSTER" --services web --query 'services[0].runningCount' --output text)" 3 "running count after scaling"

step "auto scale the service with Application Auto Scaling, then take it back"
# As an ECS user's script does. The bounds hold the current count and the policy
# never scales in, so an idle service keeps its 3 tasks throughout.
aas() { "$AWS" application-autoscaling "$@"; }
target=(--service-namespace ecs --scalable-dimension ecs:service:DesiredCount --resource-id "service/$CLUSTER/web")
aas register-scalable-target "${target[@]}" --min-capacity 3 --max-capacity 6 >/dev/null
policy=$(aas put-scaling-policy "${target[@]}" --policy-name cpu50 --policy-type TargetTrackingScaling \
	--target-tracking-scaling-policy-configuration '{"TargetValue":50,"PredefinedMetricSpecification":{"PredefinedMetricType":"ECSServiceAverageCPUUtilization"},"ScaleOutCooldown":60,"ScaleInCooldown":60,"DisableScaleIn":true}' \
	--query PolicyARN --output text)
[[ $policy == arn:aws:autoscaling:*:scalingPolicy:*:resource/ecs/service/$CLUSTER/web:policyName/cpu50 ]] || fail "policy ARN $policy"
expect "$(aas describe-scalable-targets --service-namespace ecs --resource-ids "service/$CLUSTER/web" \
	--query 'ScalableTargets[0].[MinCapacity,MaxCapacity]' --output text)" "3	6" "scalable target's capacity"
expect "$(aas describe-scaling-policies --service-namespace ecs --resource-id "service/$CLUSTER/web" \
	--query 'ScalingPolicies[].[PolicyName,PolicyType,TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType]' --output text)" \
	"cpu50	TargetTrackingScaling	ECSServiceAverageCPUUtilization" "scaling policies"
aas describe-scaling-activities --service-namespace ecs --resource-id "service/$CLUSTER/web" >/dev/null
aas delete-scaling-policy "${target[@]}" --policy-name cpu50
expect "$(aas describe-scaling-policies --service-namespace ecs --query 'length(ScalingPolicies)' --output text)" 0 "policies after deleting"
aas deregister-scalable-target "${target[@]}"
expect "$(aas describe-scalable-targets --service-namespace ecs --query 'length(ScalableTargets)' --output text)" 0 "targets after deregistering"
expect "$(ecs describe-services --cluster "$CLUSTER" --services web --query 'services[0].desiredCount' --output text)" 3 "desired count kept"

step "drain the instance: its service tasks stop; activate it again: the service recovers"
# As in ECS, draining replaces service tasks within the deployment configuration's
# bounds: with the default minimumHealthyPercent of 100 and no other instance,
# nothing could stop. Allow the service to go down to zero.
ecs update-service --cluster "$CLUSTER" --service web \
	--deployment-configuration minimumHealthyPercent=0,maximumPercent=200 >/dev/null
expect "$(ecs update-container-instances-state --cluster "$CLUSTER" --container-instances "$INSTANCE" --status DRAINING \
	--query 'containerInstances[0].status' --output text)" DRAINING "instance status"
for _ in $(seq 60); do
	running=$(ecs describe-container-instances --cluster "$CLUSTER" --container-instances "$INSTANCE" --query 'containerInstances[0].runningTasksCount' --output text)
	[ "$running" = 0 ] && break
	sleep 1
done
expect "$running" 0 "tasks running on the drained instance"
ecs update-container-instances-state --cluster "$CLUSTER" --container-instances "$INSTANCE" --status ACTIVE >/dev/null
ecs wait services-stable --cluster "$CLUSTER" --services web

step "delete the service: refused while it runs tasks, then forced; it ends INACTIVE"
out=$(ecs delete-service --cluster "$CLUSTER" --service web 2>&1) && fail "delete without --force succeeded: $out"
[[ $out == *InvalidParameterException* ]] || fail "delete without --force: $out"
expect "$(ecs delete-service --cluster "$CLUSTER" --service web --force --query service.status --output text)" DRAINING "status on delete"
ecs wait services-inactive --cluster "$CLUSTER" --services web
echo "workflow passed"
