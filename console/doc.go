// Package console is Berth's web console (`berth console`, also started by `berth
// up`): server-rendered pages over an informer cache of the user's Clusters,
// ContainerInstances, Services, Tasks and TaskDefinitions, with every read and
// write made with the caller's own kubeconfig identity, so RBAC decides what it
// shows and does. docs/console.md is the user's guide; this comment is the contract
// for tests that drive it through a browser.
//
// # Files
//
//	auth.go      token, session cookie, CSRF, loopback Host and Origin checks, headers
//	server.go    routes, the security gate (ServeHTTP), rendering, error pages
//	source.go    the informer cache, kinds the user may not list, New
//	views.go     table rows and template helpers; pages.go, taskpage.go,
//	taskdefinitions.go   the pages
//	actions.go   scale, redeploy, stop, drain: confirm (GET) then perform (POST)
//	history.go   per-service utilization samples from the informer; graph.go the SVG
//	diff.go      side-by-side line diff of two revisions
//	exec.go      the terminal (websocket) and the no-script command form
//	agent.go     the Agent interface (exec, logs) that `berth console` injects
//	run.go       Run: listen on loopback, print the URL, write the token file
//
// # Routes
//
//	GET  /?token=T                            sign in: sets the session cookie, then refreshes to /
//	GET  /healthz                             "ok" (no session needed)
//	GET  /                                    clusters
//	GET  /clusters/{name}                     a cluster: instances, services, tasks
//	GET  /instances/{name}                    an instance
//	GET  /services/{ns}/{name}                a service
//	GET  /tasks/{ns}/{name}                   a task
//	GET  /taskdefinitions                     families
//	GET  /taskdefinitions/{ns}/{name}         a family's revisions
//	GET  /taskdefinitions/{ns}/{name}/diff?a=N&b=M   two revisions side by side
//	GET  /services/{ns}/{name}/scale?desiredCount=N  confirmation; POST performs
//	GET  /services/{ns}/{name}/redeploy                confirmation; POST performs
//	GET  /tasks/{ns}/{name}/stop                       confirmation; POST performs
//	GET  /instances/{name}/drain?draining=true|false   confirmation; POST performs
//	GET  /tasks/{ns}/{name}/exec?container=C           terminal page (403 without the exec verb)
//	POST /tasks/{ns}/{name}/exec  (container, command) run without a terminal; shows output and exit code
//	GET  /tasks/{ns}/{name}/exec/ws?container=C&command=CMD   the terminal's websocket
//	GET  /static/...                          CSS, terminal.js, vendor/xterm/
//
// Every request but /healthz and sign-in needs the session cookie (else 401), and a
// Host naming a loopback address (else 403). Every POST needs the form field csrf
// (or header X-CSRF-Token) from a page of the same session and an Origin of
// http://<Host> (else 403).
//
// # Markup a browser test can rely on
//
// Every page: h1#title; p#flash (after an action); ul#notices > li.notice (kinds the
// user may not list: "forbidden: you may not list tasks ..."); nav a#nav-clusters,
// a#nav-taskdefinitions. Error pages: p#error[data-status] with the message (403s
// start with "forbidden"). Tables of objects have one row per object,
// tr[data-name] (and tr[data-namespace] for namespaced kinds), and cells with
// stable classes:
//
//	table#clusters     td.name .status .instances(span.active, span.draining) .services .running .pending
//	                   .cpu(span.cpu-utilization, span.cpu-reservation) .memory(...) .capacity-reservation
//	                   .capacity-available(span.cond-status, span.reason) .policy
//	table#instances    td.name .status .agent-connected[data-value] .draining[data-value]
//	                   .cpu(span.free-cpu, span.registered-cpu) .memory(span.free-memory, span.registered-memory)
//	                   .running .pending
//	table#services     td.namespace .name .cluster .task-definition .desired .running .pending
//	                   .rollout-state .cpu-utilization .memory-utilization
//	table#tasks        td.namespace .name .service .task-definition .last-status .desired-status
//	                   .health .instance .stop-code .age
//	table#deployments  tr[data-id][data-status]; td.rollout-state .rollout-reason .desired .running .pending .failed
//	table#events       tr.event; td.time .type .reason .message .count .source (newest first)
//	table#containers   tr[data-name]; td.last-status .exit-code .reason .health .restarts; a.exec-link
//	table#families     tr[data-namespace][data-name]; td.latest .kept .active
//	table#revisions    tr[data-revision]; a.diff-link
//	table#diff         tr.diff-row.{equal,changed,added,removed}; td.left, td.right, td.line-no
//	table#conditions   tr[data-type]; td.cond-status .reason .message
//
// Service page: dd#desired-count, #running-count, #pending-count, #rollout-state,
// #task-definition; span#auto-scaling-min, #auto-scaling-max; form#scale-form with
// input#desiredCount (name desiredCount) and button#scale; span#scale-autoscaling-note;
// form#redeploy-form > button#redeploy; p#utilization-current with span#current-cpu,
// span#current-mem; svg#utilization-graph with polyline.cpu / polyline.mem (ids
// graph-cpu-N, graph-mem-N; circle for a lone sample) or p#graph-empty;
// span#graph-samples (the number of samples).
//
// Instance page: dd#instance-status, #agent-connected[data-value], #draining[data-value];
// form#drain-form > button#drain or button#undrain; table#capacity tr[data-name=registered|free];
// table#attributes tr[data-name].
//
// Task page: dd#last-status, #desired-status, #health-status, #stop-code, #stop-reason,
// #exec-enabled[data-value]; form#stop-form > button#stop; section.logs[data-container]
// > pre.log-lines or p.log-note.
//
// Confirmation page: div#confirm-box[data-action=scale|redeploy|stop|drain],
// p#confirm-question, p.note, form#confirm-form > button#confirm, a#cancel.
//
// Terminal page: strong#exec-container; div#terminal[data-socket] (xterm mounts
// here); form#terminal-form with input#terminal-command and button#terminal-start
// (shown when script runs); span#terminal-status[data-state=idle|connecting|open|exited|closed|error];
// span#terminal-exit-code[data-value] (set when the command exits);
// form#run-form with input#run-command and button#run. Result of a run:
// code#exec-command, strong#exec-exit-code[data-value], pre#exec-output,
// p#exec-error, span#exec-truncated.
//
// Family and diff pages: dd#latest-revision; form#compare-form with select#compare-a,
// select#compare-b, button#compare; span#diff-summary[data-a][data-b][data-changed].
package console
