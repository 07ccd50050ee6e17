// Tests of the Helm chart helm/skiff with a real helm binary: lint, render with the default
// values and with overrides, parse every rendered object, assert on it, and validate it against
// the Kubernetes schemas. Tools come from tools/bootstrap (/opt/skiff-tools, or SKIFF_TOOLS).
// Usage: node tests/helm/chart_test.mjs [CHART_DIR]
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { validateObject } from "./k8s_validate.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const chart = path.resolve(process.argv[2] || path.join(root, "helm/skiff"));
const tools = process.env.SKIFF_TOOLS || "/opt/skiff-tools";
const helm = process.env.HELM || path.join(tools, "bin/helm");
const nodeModules = path.join(tools, "node/node_modules");

for (const need of [helm, path.join(nodeModules, "yaml"), path.join(nodeModules, "kubernetes-models")]) {
  if (!fs.existsSync(need)) {
    console.error(`missing ${need}: run tools/bootstrap (as root) to install the Helm test tools`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}
const YAML = createRequire(path.join(nodeModules, "/"))("yaml");

// ---------------------------------------------------------------------------------------------
let passed = 0, failed = 0;
async function test(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${String(e && e.message || e).split("\n").join("\n     ")}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
function eq(actual, expected, what) {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function runHelm(args) {
  const r = spawnSync(helm, args, { encoding: "utf8", env: { ...process.env, HELM_CACHE_HOME: tmp, HELM_CONFIG_HOME: tmp, HELM_DATA_HOME: tmp } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "skiff-helm-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

// Renders the chart; returns the parsed objects (null documents dropped).
function render(setArgs = [], extra = [], chartDir = chart) {
  const args = ["template", "skiff", chartDir, "--namespace", "kube-system", ...extra];
  for (const s of setArgs) args.push(s.startsWith("{") ? "--set-json" : "--set", s.replace(/^\{json\}/, ""));
  const r = runHelm(args);
  if (r.code !== 0) throw new Error(`helm ${args.join(" ")} failed:\n${r.err}`);
  const docs = YAML.parseAllDocuments(r.out);
  for (const d of docs) if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS()).filter((o) => o !== null);
}
const find = (objs, kind) => objs.filter((o) => o.kind === kind);
const one = (objs, kind) => { const l = find(objs, kind); eq(l.length, 1, `number of ${kind} objects`); return l[0]; };
const agentOf = (ds) => ds.spec.template.spec.containers.find((c) => c.name === "agent");
const mount = (c, p) => (c.volumeMounts || []).find((m) => m.mountPath === p);
function argMap(c) {
  const m = new Map();
  for (const a of c.args) {
    const i = a.indexOf("=");
    assert(a.startsWith("--") && i > 2, `arg ${JSON.stringify(a)} is not --flag=value`);
    assert(!m.has(a.slice(0, i)), `flag ${a.slice(0, i)} passed twice`);
    m.set(a.slice(0, i), a.slice(i + 1));
  }
  return m;
}
const volumeOf = (ds, name) => ds.spec.template.spec.volumes.find((v) => v.name === name);

// Every check on the objects that must hold whatever the values.
async function commonChecks(objs) {
  for (const o of objs) {
    try {
      await validateObject(nodeModules, o);
    } catch (e) {
      throw new Error(`${o.kind}/${o.metadata && o.metadata.name}: ${e.message}`);
    }
  }
  const ds = one(objs, "DaemonSet");
  const pod = ds.spec.template.spec;
  // API-server rules the schemas cannot express.
  for (const c of [...(pod.initContainers || []), ...pod.containers]) {
    for (const m of c.volumeMounts || []) {
      if (m.mountPropagation === "Bidirectional")
        assert(c.securityContext && c.securityContext.privileged === true,
          `container ${c.name}: Bidirectional propagation on ${m.mountPath} needs a privileged container`);
      assert(pod.volumes.some((v) => v.name === m.name), `container ${c.name} mounts undefined volume ${m.name}`);
    }
    for (const p of c.ports || []) if (pod.hostNetwork) eq(p.hostPort, p.containerPort, `${c.name} port ${p.name}: hostPort`);
  }
  eq(ds.spec.selector.matchLabels, Object.fromEntries(Object.entries(ds.spec.template.metadata.labels).filter(([k]) => k in ds.spec.selector.matchLabels)), "selector matches pod labels");
  // The probes use the port and address the agent listens on.
  const agent = agentOf(ds);
  const args = argMap(agent);
  const metricsPort = Number(args.get("--metrics-listen").split(":").pop());
  for (const p of ["livenessProbe", "readinessProbe", "startupProbe"])
    eq(agent[p].httpGet.port, metricsPort, `${p} port = --metrics-listen port`);
  // Every RBAC subject is the DaemonSet's service account.
  for (const b of find(objs, "ClusterRoleBinding")) {
    eq(b.subjects, [{ kind: "ServiceAccount", name: pod.serviceAccountName, namespace: "kube-system" }], "binding subjects");
    eq(b.roleRef.name, one(objs, "ClusterRole").metadata.name, "binding roleRef");
  }
  return { ds, pod, agent, args };
}

// ---------------------------------------------------------------------------------------------
await test("helm lint --strict (default values)", () => {
  const r = runHelm(["lint", "--strict", chart]);
  assert(r.code === 0, `helm lint failed:\n${r.out}${r.err}`);
});

await test("helm lint --strict with overrides", () => {
  const r = runHelm(["lint", "--strict", chart, "--set", "privileged=true,k8sServiceHost=10.0.0.1,metrics.serviceMonitor.enabled=true"]);
  assert(r.code === 0, `helm lint failed:\n${r.out}${r.err}`);
});

await test("default values: DaemonSet shape", async () => {
  const objs = render();
  const { ds, pod, agent, args } = await commonChecks(objs);
  eq(objs.map((o) => o.kind).sort(), ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "ServiceAccount"], "kinds rendered");
  eq(ds.metadata.namespace, "kube-system", "namespace");
  eq(pod.hostNetwork, true, "hostNetwork");
  eq(pod.priorityClassName, "system-node-critical", "priorityClassName");
  eq(pod.tolerations, [{ operator: "Exists" }], "tolerations (every taint)");
  eq(ds.spec.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 2 } }, "updateStrategy");
  assert(pod.terminationGracePeriodSeconds > 0, "terminationGracePeriodSeconds set");
  eq(pod.dnsPolicy, "Default", "dnsPolicy (cluster DNS needs the agent)");
  eq(agent.command, ["skiff-agent"], "command");
  eq(agent.image, "skiff/skiff:0.1.0", "image (appVersion tag)");
  assert(agent.resources.requests.cpu && agent.resources.requests.memory, "resource requests");
  // Probes.
  eq(agent.livenessProbe.httpGet.path, "/healthz", "liveness path");
  eq(agent.readinessProbe.httpGet.path, "/readyz", "readiness path");
  eq(agent.startupProbe.httpGet.path, "/healthz", "startup path");
  eq(agent.livenessProbe.httpGet.host, "127.0.0.1", "probe host (listener on 0.0.0.0)");
  // Security: explicit capabilities, not privileged.
  const sc = agent.securityContext;
  eq(sc.privileged, false, "agent privileged");
  eq(sc.allowPrivilegeEscalation, false, "allowPrivilegeEscalation");
  eq(sc.capabilities, { drop: ["ALL"], add: ["BPF", "NET_ADMIN", "PERFMON", "SYS_ADMIN", "SYS_RESOURCE"] }, "capabilities");
  eq(sc.readOnlyRootFilesystem, true, "readOnlyRootFilesystem");
  // Mounts: bpffs on the host through the privileged init container (Bidirectional).
  const init = pod.initContainers.find((c) => c.name === "mount-bpf-fs");
  assert(init, "init container mount-bpf-fs");
  eq(mount(init, "/sys/fs/bpf").mountPropagation, "Bidirectional", "init bpffs propagation");
  assert(/mount -t bpf bpf \/sys\/fs\/bpf/.test(init.args.join(" ")), "init container mounts bpffs");
  eq(mount(agent, "/sys/fs/bpf").mountPropagation, "HostToContainer", "agent bpffs propagation");
  eq(volumeOf(ds, mount(agent, "/sys/fs/bpf").name).hostPath, { path: "/sys/fs/bpf", type: "DirectoryOrCreate" }, "bpffs volume");
  const cg = mount(agent, "/host/sys/fs/cgroup");
  assert(cg && cg.readOnly === true, "cgroup2 mounted read-only");
  eq(volumeOf(ds, cg.name).hostPath.path, "/sys/fs/cgroup", "cgroup2 host path");
  eq(volumeOf(ds, mount(agent, "/run/skiff").name).hostPath, { path: "/run/skiff", type: "DirectoryOrCreate" }, "/run/skiff volume");
  // Flags.
  eq(Object.fromEntries(args), {
    "--node-name": "$(NODE_NAME)",
    "--endpoint-ifaces": "lxc*",
    "--bpffs-root": "/sys/fs/bpf/skiff",
    "--api-socket": "/run/skiff/agent.sock",
    "--ct-max": "262144",
    "--lb-map-max": "65536",
    "--lb-backends-max": "65536",
    "--lb-revnat-max": "65536",
    "--lb-affinity-max": "65536",
    "--socket-lb": "enabled",
    "--socket-lb-scope": "host",
    "--host-routing": "bpf",
    "--ct-gc-interval": "30",
    "--cgroup-root": "/host/sys/fs/cgroup",
    "--log-level": "info",
    "--log-format": "text",
    "--metrics-listen": "0.0.0.0:9890",
    "--healthz-listen": "0.0.0.0:10256",
  }, "agent flags");
  eq(agent.env.find((e) => e.name === "NODE_NAME").valueFrom.fieldRef.fieldPath, "spec.nodeName", "NODE_NAME from the downward API");
});

await test("default values: ClusterRole is exactly get/list/watch on the six resources", async () => {
  const objs = render();
  const role = one(objs, "ClusterRole");
  const got = [];
  for (const r of role.rules) {
    eq([...r.verbs].sort(), ["get", "list", "watch"], `verbs on ${r.resources}`);
    assert(!r.nonResourceURLs && !r.resourceNames, "no nonResourceURLs/resourceNames");
    for (const g of r.apiGroups) for (const res of r.resources) got.push(`${g}/${res}`);
  }
  eq(got.sort(), ["/namespaces", "/nodes", "/pods", "/services", "discovery.k8s.io/endpointslices", "networking.k8s.io/networkpolicies"], "resources");
  const sa = one(objs, "ServiceAccount");
  eq(one(objs, "DaemonSet").spec.template.spec.serviceAccountName, sa.metadata.name, "DaemonSet uses the ServiceAccount");
});

await test("privileged=true: privileged agent, no capability list, Bidirectional bpffs", async () => {
  const objs = render(["privileged=true"]);
  const { agent } = await commonChecks(objs);
  eq(agent.securityContext.privileged, true, "privileged");
  assert(!agent.securityContext.capabilities, "no capabilities when privileged");
  eq(mount(agent, "/sys/fs/bpf").mountPropagation, "Bidirectional", "agent bpffs propagation");
});

await test("privileged=false with a custom capability list", async () => {
  const { agent } = await commonChecks(render(["{json}agent.capabilities=[\"BPF\",\"NET_ADMIN\"]"]));
  eq(agent.securityContext.capabilities.add, ["BPF", "NET_ADMIN"], "capabilities.add");
  eq(agent.securityContext.privileged, false, "privileged");
});

await test("k8sServiceHost: --k8s-api-server only when set, IPv6 in brackets", async () => {
  let r = await commonChecks(render());
  assert(!r.args.has("--k8s-api-server"), "--k8s-api-server absent by default");
  r = await commonChecks(render(["k8sServiceHost=10.0.0.1", "k8sServicePort=6443"]));
  eq(r.args.get("--k8s-api-server"), "https://10.0.0.1:6443", "--k8s-api-server");
  r = await commonChecks(render(["k8sServiceHost=api.example.internal", "k8sServicePort=443"]));
  eq(r.args.get("--k8s-api-server"), "https://api.example.internal:443", "--k8s-api-server (name)");
  r = await commonChecks(render(["k8sServiceHost=fd00::1"]));
  eq(r.args.get("--k8s-api-server"), "https://[fd00::1]:6443", "--k8s-api-server (IPv6)");
});

await test("ServiceMonitor on: Service + ServiceMonitor, selectors line up", async () => {
  const objs = render(["metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom", "metrics.port=9999"]);
  const { ds, agent, args } = await commonChecks(objs);
  const svc = one(objs, "Service"), sm = one(objs, "ServiceMonitor");
  eq(args.get("--metrics-listen"), "0.0.0.0:9999", "--metrics-listen");
  eq(agent.ports.find((p) => p.name === "metrics").containerPort, 9999, "metrics containerPort");
  eq(svc.spec.clusterIP, "None", "headless");
  for (const [k, v] of Object.entries(svc.spec.selector)) eq(ds.spec.template.metadata.labels[k], v, `Service selector ${k}`);
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) eq(svc.metadata.labels[k], v, `ServiceMonitor selector ${k}`);
  eq(sm.metadata.labels.release, "prom", "extra ServiceMonitor label");
  eq(sm.spec.endpoints[0].port, svc.spec.ports[0].name, "ServiceMonitor endpoint port = Service port name");
  eq(svc.spec.ports[0].targetPort, "metrics", "Service targetPort");
  eq(sm.spec.endpoints[0].path, "/metrics", "path");
  eq(sm.spec.namespaceSelector.matchNames, ["kube-system"], "namespaceSelector");
});

await test("custom map sizes, interfaces, logging, run dir and extra args", async () => {
  const objs = render(["maps.ctMax=1048576", "maps.lbMapMax=131072", "maps.lbBackendsMax=200000",
    "maps.lbRevnatMax=4096", "maps.lbAffinityMax=8192", "{json}agent.endpointInterfaces=[\"lxc*\",\"cali*\"]",
    "agent.logLevel=debug", "agent.logFormat=json", "agent.runDir=/var/run/skiff-x",
    "{json}agent.extraArgs=[\"--foo=bar baz\"]", "updateStrategy.maxUnavailable=10%",
    "agent.ctGcInterval=0"]);
  const { ds, agent, args } = await commonChecks(objs);
  eq(args.get("--ct-max"), "1048576", "--ct-max");
  eq(args.get("--lb-map-max"), "131072", "--lb-map-max");
  eq(args.get("--lb-backends-max"), "200000", "--lb-backends-max");
  eq(args.get("--lb-revnat-max"), "4096", "--lb-revnat-max");
  eq(args.get("--lb-affinity-max"), "8192", "--lb-affinity-max");
  eq(args.get("--endpoint-ifaces"), "lxc*,cali*", "--endpoint-ifaces");
  eq(args.get("--log-level"), "debug", "--log-level");
  eq(args.get("--log-format"), "json", "--log-format");
  eq(args.get("--api-socket"), "/var/run/skiff-x/agent.sock", "--api-socket");
  eq(args.get("--ct-gc-interval"), "0", "--ct-gc-interval 0 (GC off)");
  eq(args.get("--foo"), "bar baz", "extra arg passed as one argument");
  eq(volumeOf(ds, mount(agent, "/var/run/skiff-x").name).hostPath.path, "/var/run/skiff-x", "run dir volume");
  eq(ds.spec.updateStrategy.rollingUpdate.maxUnavailable, "10%", "maxUnavailable percentage");
});

await test("large map sizes render as integers, not floats", async () => {
  const { args } = await commonChecks(render(["maps.ctMax=16777216"]));
  eq(args.get("--ct-max"), "16777216", "--ct-max from --set");
  const r2 = await commonChecks(render([], ["-f", writeValues("maps: {ctMax: 4194304, lbAffinityMax: 1048576}\n")]));
  eq(r2.args.get("--ct-max"), "4194304", "--ct-max from a values file");
  eq(r2.args.get("--lb-affinity-max"), "1048576", "--lb-affinity-max from a values file");
});
function writeValues(text) {
  const f = path.join(tmp, `values-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(f, text);
  return f;
}

await test("AppArmor: field on Kubernetes >= 1.30, annotation before", async () => {
  let { ds, agent } = await commonChecks(render([], ["--kube-version", "1.31.0"]));
  eq(agent.securityContext.appArmorProfile, { type: "Unconfined" }, "appArmorProfile");
  assert(!ds.spec.template.metadata.annotations["container.apparmor.security.beta.kubernetes.io/agent"], "no annotation on 1.31");
  ({ ds, agent } = await commonChecks(render([], ["--kube-version", "1.28.0"])));
  assert(!agent.securityContext.appArmorProfile, "no appArmorProfile field on 1.28");
  eq(ds.spec.template.metadata.annotations["container.apparmor.security.beta.kubernetes.io/agent"], "unconfined", "annotation on 1.28");
});

await test("serviceAccount/rbac off, names overridden", async () => {
  const objs = render(["serviceAccount.create=false", "serviceAccount.name=existing", "rbac.create=false", "fullnameOverride=dp"]);
  await commonChecks(objs);
  eq(objs.map((o) => o.kind), ["DaemonSet"], "only the DaemonSet");
  eq(objs[0].metadata.name, "dp", "fullnameOverride");
  eq(objs[0].spec.template.spec.serviceAccountName, "existing", "serviceAccountName");
});

await test("values.schema.json refuses bad values", () => {
  const bad = ["maps.ctMax=-1", "maps.ctMax=abc", "privileged=yes", "typo=1", "agent.typo=1",
    "k8sServiceHost=https://10.0.0.1", "agent.logLevel=verbose", "agent.logFormat=xml",
    "agent.capabilities[0]=CAP_BPF", "updateStrategy.maxUnavailable=0", "agent.bpffsRoot=/tmp/bpf",
    "metrics.port=70000", "image.pullPolicy=Sometimes", "metrics.serviceMonitor.interval=soon",
    "agent.ctGcInterval=-1", "agent.ctGcInterval=86401", "agent.ctGcInterval=fast"];
  for (const s of bad) {
    const r = runHelm(["template", "skiff", chart, "--set", s]);
    assert(r.code !== 0, `--set ${s} was accepted`);
    assert(/schema/.test(r.err), `--set ${s} failed, but not on the schema: ${r.err}`);
  }
});

await test("NOTES.txt tells how to check the agent (agentctl status)", () => {
  // helm template does not render NOTES.txt: render a copy of the chart where it is a template.
  const copy = path.join(tmp, "notes-chart");
  fs.cpSync(chart, copy, { recursive: true });
  const notes = fs.readFileSync(path.join(copy, "templates/NOTES.txt"), "utf8");
  fs.rmSync(path.join(copy, "templates/NOTES.txt"));
  fs.writeFileSync(path.join(copy, "templates/_notes_test.tpl"), `{{- define "skiff-test.notes" }}${notes}{{- end }}`);
  fs.writeFileSync(path.join(copy, "templates/notes-test.yaml"), `notes: {{ include "skiff-test.notes" . | toJson }}\n`);
  const get = (sets) => render(sets, ["--show-only", "templates/notes-test.yaml"], copy)[0].notes;
  let text = get([]);
  assert(/exec \$POD -c agent -- agentctl status/.test(text), `no agentctl status in NOTES:\n${text}`);
  assert(/WARNING: k8sServiceHost is not set/.test(text), "warning about k8sServiceHost");
  text = get(["k8sServiceHost=10.0.0.1", "agent.runDir=/run/other"]);
  assert(/agentctl --socket \/run\/other\/agent.sock status/.test(text), `agentctl --socket for a custom run dir:\n${text}`);
  assert(!/WARNING/.test(text) && /https:\/\/10.0.0.1:6443/.test(text), "no warning when k8sServiceHost is set");
});

await test("chart README documents every value", () => {
  const readme = fs.readFileSync(path.join(chart, "README.md"), "utf8");
  const values = YAML.parse(fs.readFileSync(path.join(chart, "values.yaml"), "utf8"));
  const leaves = [];
  const walk = (o, p) => {
    for (const [k, v] of Object.entries(o)) {
      const key = p ? `${p}.${k}` : k;
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length &&
          !["resources", "seccompProfile", "seLinuxOptions", "nodeSelector"].includes(k)) walk(v, key);
      else leaves.push(key);
    }
  };
  walk(values, "");
  const missing = leaves.filter((k) => !readme.includes("`" + k + "`"));
  eq(missing, [], "values missing from helm/skiff/README.md");
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
