"""The rendered Kubernetes manifests agree with the binary they deploy (no drift).

Everything on the binary's side is read from the binary itself: the port and setting names from
`retail-api serve --help`, the routes from `retail-api openapi`, the readiness path from
`retail-api healthcheck --help`. Then the local variant's ConfigMap is handed to a real server
process, which must start with it and pass scripts/verify.sh.

Run by scripts/test-deploy.sh:
    RETAIL_API_BIN=target/release/retail-api RENDERED_DIR=target/k8s-rendered \
        python -m unittest deploy/tests/test_manifests.py
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ["RETAIL_API_BIN"])
RENDERED = Path(os.environ["RENDERED_DIR"])

# Names fixed by CONTRACT.md (shared/CONTRACT.md, "Container and Kubernetes").
CONTRACT = {
    "namespace": "mlops",
    "Deployment": "retail-api",
    "Service": "retail-api-service",
    "ServiceAccount": "retail-api-sa",
    "HorizontalPodAutoscaler": "retail-api-hpa",
    "Ingress": "retail-api-ingress",
    "label": {"app": "retail-api"},
    "uid": 65532,
}
# Seed 002's Retail Forecast API as its own Deployment (components/forecast), in the variants that
# have it. The paths are the seed Ingress's routes to its Service (the seed's /metrics route is
# answered by the ALB with a 404 here, as on the basket API).
FORECAST = {
    "Deployment": "retail-forecast-api",
    "Service": "retail-forecast-service",
    "HorizontalPodAutoscaler": "retail-forecast-api-hpa",
    "PodDisruptionBudget": "retail-forecast-api-pdb",
    "label": {"app": "retail-forecast-api"},
    "model": "retail-sales-forecast",
    "host": "api.retail-forecast.com",
    "paths": ["/healthz", "/predict", "/batch-predict", "/model-info"],
}


# The server's authentication settings (issue 13; CONTRACT.md, "Auth"): the only auth names a
# manifest may set. Until the binary reads them (the server half of issue 13 lands separately),
# they are accepted as settings; once it reads any of them, every name must be one it reads.
AUTH_SETTINGS = {
    "JWT_SECRET_KEY", "JWT_JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ALGORITHMS", "JWT_LEEWAY_SECONDS",
    "JWT_DEFAULT_SCOPES", "JWT_JWKS_REFRESH_SECONDS", "JWT_JWKS_MIN_REFETCH_SECONDS", "API_KEYS_FILE",
    "METRICS_PUBLIC",
}
# The External Secrets Operator chart Terraform pins, and the CRD versions it serves.
CHARTS = json.loads((ROOT / "deploy/tests/chart-versions.json").read_text())


def pinned_chart(chart: str) -> str:
    found = re.search(rf'chart\s*=\s*"{chart}"\s*\n\s*version\s*=\s*"([^"]+)"', (ROOT / "deploy/terraform/auth.tf").read_text())
    assert found, f"no pinned {chart} release in deploy/terraform/auth.tf"
    return found.group(1)


def run(*args: str) -> str:
    # A clean environment: `--help` shows set variables' values in its `[env: NAME=value]` lines.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run([str(BIN), *args], check=True, capture_output=True, text=True, env=env).stdout


def serve_help() -> str:
    return run("serve", "--help")


def flag_default(help_text: str, flag: str) -> str:
    """The `[default: …]` of one flag in clap's long help."""
    block = re.search(rf"--{flag} <[A-Z_]+>(.*?)(?=\n\s+--|\Z)", help_text, re.S)
    assert block, f"--{flag} not in the binary's help"
    default = re.search(r"\[default: ([^\]]*)\]", block.group(1))
    assert default, f"--{flag} has no default in the binary's help"
    return default.group(1)


def accepted_settings() -> set[str]:
    """Environment variables the binary reads: clap's `[env: NAME=]` and the `env::var("NAME")`
    reads in its own crates (RUST_LOG among them: crates/cli/src/telemetry.rs)."""
    names = set(re.findall(r"\[env: ([A-Z0-9_]+)[=\]]", serve_help()))  # `]`: hide_env_values
    for src in [*ROOT.glob("crates/cli/src/**/*.rs"), *ROOT.glob("crates/server/src/**/*.rs")]:
        names |= set(re.findall(r'env::var(?:_os)?\("([A-Z0-9_]+)"\)', src.read_text()))
    assert {"RUST_LOG", "LOG_FORMAT"} <= names, "the binary no longer reads its logging settings"
    if not names & AUTH_SETTINGS:
        names |= AUTH_SETTINGS  # a binary from before issue 13: see AUTH_SETTINGS
    return names


def openapi_paths() -> set[str]:
    return set(json.loads(run("openapi"))["paths"])


def load(variant: str) -> list[dict]:
    path = RENDERED / f"{variant}.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs, f"{path} is empty"
    return docs


def variants() -> list[str]:
    names = sorted(p.stem for p in RENDERED.glob("*.yaml"))
    assert {"local", "eks"} <= set(names), f"rendered variants missing in {RENDERED}: {names}"
    return names


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def all_of(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity (as these manifests write them) in MiB."""
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    found = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", quantity)
    assert found, f"unexpected memory quantity {quantity}"
    return int(found.group(1)) * units[found.group(2)]


def cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


MEASURED = ROOT / "deploy/k8s/measured-memory.json"


class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.help = serve_help()
        cls.port = int(flag_default(cls.help, "port"))
        cls.settings = accepted_settings()
        cls.paths = openapi_paths()
        cls.ready_path = flag_default(run("healthcheck", "--help"), "path")
        cls.variants = {v: load(v) for v in variants()}

    def api(self, docs):
        """The basket API's Deployment and its container."""
        deployment = one(docs, "Deployment", CONTRACT["Deployment"])
        return deployment, self.container(deployment)

    def container(self, deployment) -> dict:
        (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "retail-api"]
        return container

    def servers(self, docs) -> list[tuple[dict, dict]]:
        """Every API Deployment of a variant (the basket API's, and the forecast API's with
        components/forecast) with its container: each must pass the same checks."""
        found = [(d, self.container(d)) for d in all_of(docs, "Deployment")]
        self.assertIn(CONTRACT["Deployment"], [d["metadata"]["name"] for d, _ in found])
        return found

    def config(self, docs, container=None) -> dict:
        """The settings a container reads from its ConfigMaps; a later envFrom source wins, as in Kubernetes."""
        if container is None:
            _, container = self.api(docs)
        refs = [e["configMapRef"]["name"] for e in container.get("envFrom", [])]
        _, basket = self.api(docs)
        shared = [e["configMapRef"]["name"] for e in basket.get("envFrom", [])]
        self.assertEqual(len(shared), 1, "the basket API takes its settings from one ConfigMap")
        self.assertEqual(refs[:1], shared, "every API reads the shared settings (edge, auth) first")
        merged = {}
        for ref in refs:
            merged.update(one(docs, "ConfigMap", ref).get("data", {}))
        return merged

    def container_env(self, docs, container=None) -> dict:
        """Every variable an API container gets: its ConfigMaps, then its own env (name -> value or valueFrom)."""
        if container is None:
            _, container = self.api(docs)
        env = dict(self.config(docs, container))
        env.update({e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])})
        return env

    def named_port(self, container, port) -> int:
        if isinstance(port, int):
            return port
        (found,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
        return found

    def selected(self, docs, selector: dict) -> list[str]:
        """The API Deployments whose pods a label selector selects."""
        return [d["metadata"]["name"] for d, _ in self.servers(docs)
                if matches(selector, d["spec"]["template"]["metadata"]["labels"])]

    def job_policy(self, docs, policy: dict) -> bool:
        """Whether a NetworkPolicy selects the pods of a Job (batch scoring)."""
        selector = policy["spec"]["podSelector"]["matchLabels"]
        return any(matches(selector, j["spec"]["template"]["metadata"]["labels"]) for j in all_of(docs, "Job"))

    def main_services(self, docs) -> list[str]:
        """Each API Deployment's own Service (the contract's, and seed 002's forecast Service)."""
        names = [d["metadata"]["name"] for d, _ in self.servers(docs)]
        return [CONTRACT["Service"]] + ([FORECAST["Service"]] if FORECAST["Deployment"] in names else [])

    def test_contract_names(self):
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                for kind in ("Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler"):
                    self.assertEqual(one(docs, kind, CONTRACT[kind])["metadata"]["namespace"], CONTRACT["namespace"])
                for doc in docs:
                    if doc["kind"] != "Namespace":
                        namespace = doc["metadata"].get("namespace")
                        self.assertEqual(namespace, CONTRACT["namespace"], doc["metadata"]["name"])
                deployment, _ = self.api(docs)
                pod = deployment["spec"]["template"]
                self.assertEqual(pod["spec"]["serviceAccountName"], CONTRACT["ServiceAccount"])
                self.assertTrue(matches(CONTRACT["label"], pod["metadata"]["labels"]))
                self.assertEqual(deployment["spec"]["selector"]["matchLabels"], CONTRACT["label"])
                names = {d["metadata"]["name"] for d, _ in self.servers(docs)}
                self.assertLessEqual(names, {CONTRACT["Deployment"], FORECAST["Deployment"]}, "an unknown Deployment")

    def test_port_is_the_binarys(self):
        for variant, docs in self.variants.items():
            for deployment, container in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    self.assertEqual([p["containerPort"] for p in container["ports"]], [self.port])
                    self.assertEqual(int(self.config(docs, container).get("PORT", self.port)), self.port)

    def test_probes_use_the_binarys_paths(self):
        for variant, docs in self.variants.items():
            for deployment, container in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
                    for kind, probe in probes.items():
                        self.assertIn(probe["path"], self.paths, kind)
                        self.assertEqual(self.named_port(container, probe["port"]), self.port, kind)
                    # Readiness is what the binary itself calls ready; liveness must not be the same
                    # endpoint, or a pod without a model would be restarted instead of kept out of rotation.
                    self.assertEqual(probes["readinessProbe"]["path"], self.ready_path)
                    self.assertNotEqual(probes["livenessProbe"]["path"], self.ready_path)
                    self.assertEqual(probes["livenessProbe"]["path"], "/health")

    def test_services_select_the_pods_and_reach_the_port(self):
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                servers = {d["metadata"]["name"]: c for d, c in self.servers(docs)}
                services = all_of(docs, "Service")
                self.assertLessEqual(set(self.main_services(docs)), {s["metadata"]["name"] for s in services})
                for service in services:
                    name = service["metadata"]["name"]
                    # One Deployment's pods each: the two APIs answer different requests on the same paths.
                    selected = self.selected(docs, service["spec"]["selector"])
                    self.assertEqual(len(selected), 1, f"{name} selects the pods of {selected}")
                    for port in service["spec"]["ports"]:
                        self.assertEqual(self.named_port(servers[selected[0]], port["targetPort"]), self.port, name)
                main = one(docs, "Service", CONTRACT["Service"])
                self.assertEqual([p["port"] for p in main["spec"]["ports"]], [80])
                self.assertEqual(self.selected(docs, main["spec"]["selector"]), [CONTRACT["Deployment"]])

    def test_load_balancer_health_checks_use_readiness(self):
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                for ingress in all_of(docs, "Ingress"):
                    notes = ingress["metadata"]["annotations"]
                    self.assertEqual(notes["alb.ingress.kubernetes.io/healthcheck-path"], self.ready_path)
                for service in all_of(docs, "Service"):
                    notes = service["metadata"].get("annotations", {})
                    path = notes.get("service.beta.kubernetes.io/aws-load-balancer-healthcheck-path")
                    if service["spec"]["type"] == "LoadBalancer":
                        self.assertEqual(path, self.ready_path, service["metadata"]["name"])

    def test_ingress_routes_the_api_and_hides_metrics(self):
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                services = {s["metadata"]["name"]: s for s in all_of(docs, "Service")}
                for ingress in all_of(docs, "Ingress"):
                    self.assertEqual(ingress["metadata"]["name"], CONTRACT["Ingress"])
                    notes = ingress["metadata"]["annotations"]
                    rules = ingress["spec"]["rules"]
                    # The controller numbers the listener rules in this order, and a rule without a
                    # host matches every host: it must come last, or it takes the hosts' requests.
                    hostless = [i for i, rule in enumerate(rules) if not rule.get("host")]
                    self.assertEqual(hostless, [len(rules) - 1], "one rule without a host, the last")
                    for rule in rules:
                        paths = rule["http"]["paths"]
                        by_path = {p["path"]: p["backend"]["service"] for p in paths}
                        self.assertIn("/metrics", self.paths)
                        metrics = by_path["/metrics"]
                        self.assertEqual(metrics["port"], {"name": "use-annotation"})
                        action = json.loads(notes[f"alb.ingress.kubernetes.io/actions.{metrics['name']}"])
                        self.assertEqual(action["type"], "fixed-response")
                        self.assertLess(paths.index(next(p for p in paths if p["path"] == "/metrics")),
                                        paths.index(next(p for p in paths if p["path"] == "/")), "/metrics before /")
                        self.assertEqual(next(p for p in paths if p["path"] == "/")["pathType"], "Prefix")
                        # Every other backend is a Service of the variant, by one of its port names.
                        for path in paths:
                            backend = path["backend"]["service"]
                            if backend["port"] == {"name": "use-annotation"}:
                                continue
                            self.assertIn(backend["name"], services, path["path"])
                            port_names = [p["name"] for p in services[backend["name"]]["spec"]["ports"]]
                            self.assertIn(backend["port"]["name"], port_names, path["path"])
                    root = {p["path"]: p["backend"]["service"] for p in rules[-1]["http"]["paths"]}["/"]
                    self.assertEqual(root["name"], CONTRACT["Service"])

    def test_service_monitor_scrapes_metrics(self):
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                services = all_of(docs, "Service")
                for monitor in all_of(docs, "ServiceMonitor"):
                    selector = monitor["spec"]["selector"]["matchLabels"]
                    selected = [s for s in services if matches(selector, s["metadata"]["labels"])]
                    self.assertTrue(selected, "the ServiceMonitor selects no Service")
                    for endpoint in monitor["spec"]["endpoints"]:
                        self.assertIn(endpoint["path"], self.paths)
                        self.assertEqual(endpoint["path"], "/metrics")
                        for service in selected:
                            self.assertIn(endpoint["port"], [p["name"] for p in service["spec"]["ports"]])

    def test_settings_are_ones_the_binary_reads(self):
        for variant, docs in self.variants.items():
            for deployment, container in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    for name in self.container_env(docs, container):
                        self.assertIn(name, self.settings, f"{name} is not a setting of {BIN.name}")

    def test_keep_alive_outlasts_the_load_balancers_idle_timeout(self):
        # The balancer must close idle connections first, or it reuses one the server just
        # closed and answers 502 (ALB's default idle timeout is 60 s).
        for variant, docs in self.variants.items():
            for deployment, container in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    config = self.config(docs, container)
                    keep_alive = float(config.get("KEEP_ALIVE_TIMEOUT_SECONDS",
                                                  flag_default(self.help, "keep-alive-timeout-seconds")))
                    header = float(config.get("HEADER_READ_TIMEOUT_SECONDS",
                                              flag_default(self.help, "header-read-timeout-seconds")))
                    self.assertLess(header, keep_alive)
                    for ingress in all_of(docs, "Ingress"):
                        attributes = ingress["metadata"]["annotations"].get(
                            "alb.ingress.kubernetes.io/load-balancer-attributes", "")
                        found = re.search(r"idle_timeout\.timeout_seconds=(\d+)", attributes)
                        alb_idle = float(found.group(1)) if found else 60.0
                        self.assertGreater(keep_alive, alb_idle, "KEEP_ALIVE_TIMEOUT_SECONDS must exceed the ALB's")

    def test_termination_grace_covers_the_drain(self):
        for variant, docs in self.variants.items():
            for deployment, container in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    config = self.config(docs, container)
                    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
                    drain = float(config.get("DRAIN_DELAY_SECONDS", flag_default(self.help, "drain-delay-seconds")))
                    grace = float(config.get("SHUTDOWN_GRACE_SECONDS", flag_default(self.help, "shutdown-grace-seconds")))
                    bound = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                    self.assertGreaterEqual(bound, pre_stop + drain + grace)
                    # A pod killed before its preStop ends would drop requests the ALB still sends.
                    self.assertGreater(pre_stop, 0)

    def test_pod_security_is_restricted(self):
        for variant, docs in self.variants.items():
            for deployment, container in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    pod = deployment["spec"]["template"]["spec"]
                    self.assertEqual(pod["securityContext"]["runAsUser"], CONTRACT["uid"])
                    self.assertEqual(pod["securityContext"]["runAsGroup"], CONTRACT["uid"])
                    self.assertTrue(pod["securityContext"]["runAsNonRoot"])
                    self.assertEqual(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault")
                    sc = container["securityContext"]
                    self.assertFalse(sc["allowPrivilegeEscalation"])
                    self.assertTrue(sc["readOnlyRootFilesystem"])
                    self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
                    for kind in ("requests", "limits"):
                        self.assertEqual(set(container["resources"][kind]), {"cpu", "memory"})
                    namespace = one(docs, "Namespace", CONTRACT["namespace"])
                    self.assertEqual(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted")

    def test_image_matches_dockerfile(self):
        text = (ROOT / "deploy/docker/Dockerfile").read_text()
        self.assertRegex(text, rf"(?m)^USER {CONTRACT['uid']}(:{CONTRACT['uid']})?\s*$")
        self.assertRegex(text, rf"(?m)^EXPOSE {self.port}\b")
        self.assertRegex(text, r'(?m)^ENTRYPOINT \["retail-api"\]')

    def test_autoscaling_and_disruption_target_the_deployment(self):
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                names = [d["metadata"]["name"] for d, _ in self.servers(docs)]
                one(docs, "HorizontalPodAutoscaler", CONTRACT["HorizontalPodAutoscaler"])
                hpas = all_of(docs, "HorizontalPodAutoscaler")
                # One HPA, one PodDisruptionBudget and one NetworkPolicy for each API Deployment.
                self.assertEqual(sorted(h["spec"]["scaleTargetRef"]["name"] for h in hpas), sorted(names))
                for hpa in hpas:
                    self.assertEqual(hpa["spec"]["scaleTargetRef"]["kind"], "Deployment")
                    self.assertEqual((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]), (2, 10))
                    self.assertEqual({m["resource"]["name"] for m in hpa["spec"]["metrics"]}, {"cpu"},
                                     "memory does not follow load (see hpa.yaml)")
                    self.assertEqual(hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"], 0)
                    self.assertEqual(hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 300)
                pdbs = [self.selected(docs, p["spec"]["selector"]["matchLabels"]) for p in all_of(docs, "PodDisruptionBudget")]
                self.assertEqual(sorted(pdbs), sorted([n] for n in names), "each PDB covers one Deployment's pods")
                # The batch Job's own policy (test_batch_job_...) aside, each policy covers one API.
                policies = [p for p in all_of(docs, "NetworkPolicy") if not self.job_policy(docs, p)]
                selected = [self.selected(docs, p["spec"]["podSelector"]["matchLabels"]) for p in policies]
                self.assertEqual(sorted(selected), sorted([n] for n in names), "each NetworkPolicy covers one Deployment's pods")
                for policy in policies:
                    ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
                    self.assertTrue(all(self.named_port(self.api(docs)[1], p) == self.port for p in ports))

    def test_quota_holds_every_autoscaler_at_its_maximum(self):
        # Each Deployment at its HPA's maxReplicas plus its rollout's surge pod: a quota below that
        # stops the HPA (or a rollout) with a FailedCreate event, not an error anyone sees.
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                need = {"pods": 0, "requests.cpu": 0.0, "requests.memory": 0.0, "limits.cpu": 0.0, "limits.memory": 0.0}
                for deployment, container in self.servers(docs):
                    (hpa,) = [h for h in all_of(docs, "HorizontalPodAutoscaler")
                              if h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]]
                    pods = hpa["spec"]["maxReplicas"] + int(deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"])
                    need["pods"] += pods
                    for kind in ("requests", "limits"):
                        need[f"{kind}.cpu"] += pods * cores(container["resources"][kind]["cpu"])
                        need[f"{kind}.memory"] += pods * mebibytes(container["resources"][kind]["memory"])
                # Batch scoring Jobs run beside the APIs: all their pods at once.
                for job in all_of(docs, "Job"):
                    pods = int(job["spec"]["parallelism"])
                    need["pods"] += pods
                    for container in job["spec"]["template"]["spec"]["containers"]:
                        for kind in ("requests", "limits"):
                            need[f"{kind}.cpu"] += pods * cores(container["resources"][kind]["cpu"])
                            need[f"{kind}.memory"] += pods * mebibytes(container["resources"][kind]["memory"])
                (quota,) = all_of(docs, "ResourceQuota")
                hard = quota["spec"]["hard"]
                self.assertGreaterEqual(int(hard["pods"]), need["pods"])
                for kind in ("requests", "limits"):
                    self.assertGreaterEqual(cores(hard[f"{kind}.cpu"]), need[f"{kind}.cpu"], f"{kind}.cpu")
                    self.assertGreaterEqual(mebibytes(hard[f"{kind}.memory"]), need[f"{kind}.memory"], f"{kind}.memory")

    def test_batch_job_shards_by_completion_index_like_the_server_pods(self):
        docs = self.variants["eks-all"]
        job = one(docs, "Job", "retail-api-batch-scoring")
        spec, pod = job["spec"], job["spec"]["template"]["spec"]
        self.assertEqual(spec["completionMode"], "Indexed")
        (config,) = [c for c in all_of(docs, "ConfigMap") if c["metadata"]["name"].startswith("retail-api-batch-scoring")]
        shards = int(config["data"]["BATCH_SHARDS"])
        self.assertEqual((spec["completions"], spec["parallelism"]), (shards, shards))
        (container,) = pod["containers"]
        self.assertEqual(container["args"], ["predict", "--shard", "$(JOB_COMPLETION_INDEX)/$(BATCH_SHARDS)"])
        (index,) = [e for e in container["env"] if e["name"] == "JOB_COMPLETION_INDEX"]
        self.assertIn("job-completion-index", index["valueFrom"]["fieldRef"]["fieldPath"])
        predict_help = run("predict", "--help")
        for name in ("RETAIL_PREDICT_INPUT", "RETAIL_PREDICT_OUT"):
            self.assertIn(f"[env: {name}", predict_help)
            self.assertTrue(config["data"][name].startswith("s3://"), name)
        _, server = self.servers(docs)[0]
        self.assertEqual(container["image"], server["image"])
        self.assertEqual(container["securityContext"], server["securityContext"])
        self.assertEqual(pod["securityContext"]["runAsUser"], CONTRACT["uid"])
        account = one(docs, "ServiceAccount", pod["serviceAccountName"])
        self.assertIn(":role/retail-api-batch-scoring", account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"])
        # Its pods take no connections and reach DNS and HTTPS (S3, STS), never the instance metadata.
        (policy,) = [p for p in all_of(docs, "NetworkPolicy") if self.job_policy(docs, p)]
        self.assertEqual(policy["spec"]["policyTypes"], ["Ingress", "Egress"])
        self.assertNotIn("ingress", policy["spec"])
        self.assertFalse(self.selected(docs, policy["spec"]["podSelector"]["matchLabels"]), "no API pod")
        egress = policy["spec"]["egress"]
        self.assertEqual(sorted({p["port"] for rule in egress for p in rule["ports"]}), [53, 443])
        blocks = [t["ipBlock"] for rule in egress for t in rule["to"] if "ipBlock" in t]
        self.assertTrue(blocks and all("169.254.169.254/32" in b.get("except", []) for b in blocks), blocks)

    def test_eks_namespace_injects_alb_readiness_gates(self):
        # Without the label the controller injects no readiness gate, and a new pod is Ready
        # before its ALB target is healthy while the old one already drains (docs/deploy-eks.md).
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                for ingress in all_of(docs, "Ingress"):
                    self.assertEqual(ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"], "ip")
                    namespace = one(docs, "Namespace", ingress["metadata"]["namespace"])
                    self.assertEqual(namespace["metadata"]["labels"].get("elbv2.k8s.aws/pod-readiness-gate-inject"),
                                     "enabled")

    def test_replicas_spread_across_zones_strictly(self):
        for variant, docs in self.variants.items():
            for deployment, _ in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    spread = {c["topologyKey"]: c for c in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]}
                    self.assertEqual(spread["topology.kubernetes.io/zone"]["whenUnsatisfiable"], "DoNotSchedule")
                    self.assertEqual(spread["kubernetes.io/hostname"]["whenUnsatisfiable"], "ScheduleAnyway")
                    for constraint in spread.values():
                        # Its own pods only: counting the other API's pods would skew its spread.
                        self.assertEqual(self.selected(docs, constraint["labelSelector"]["matchLabels"]),
                                         [deployment["metadata"]["name"]])

    def test_network_policy_ports_are_numbers(self):
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                for policy in all_of(docs, "NetworkPolicy"):
                    ingress = [p["port"] for rule in policy["spec"].get("ingress", []) for p in rule["ports"]]
                    egress = [p["port"] for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])]
                    self.assertTrue(all(isinstance(p, int) for p in ingress + egress),
                                    "the EKS policy agent drops rules with named ports")
                    if not self.job_policy(docs, policy):
                        self.assertEqual(ingress, [self.port], "an API takes connections on its port only")

    def test_service_monitor_selects_each_apis_own_service(self):
        # One Service per scrape target: each selected Service makes every pod a target again.
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                for monitor in all_of(docs, "ServiceMonitor"):
                    selector = monitor["spec"]["selector"]["matchLabels"]
                    selected = [s["metadata"]["name"] for s in all_of(docs, "Service")
                                if matches(selector, s["metadata"]["labels"])]
                    self.assertEqual(sorted(selected), sorted(self.main_services(docs)))

    def test_hpa_owns_the_replica_count(self):
        for variant, docs in self.variants.items():
            for deployment, _ in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    if any(h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
                           for h in all_of(docs, "HorizontalPodAutoscaler")):
                        self.assertNotIn("replicas", deployment["spec"], "every apply would reset the HPA's count")

    def test_memory_fits_the_measured_peak(self):
        measured = json.loads(MEASURED.read_text())
        config = ROOT / measured["settings"]
        self.assertEqual(hashlib.sha256(config.read_bytes()).hexdigest(), measured["settings_sha256"],
                         f"{config} changed since {MEASURED.name} was measured: run {measured['command']}")
        self.assertEqual(set(measured["status_codes"]), {"200"}, "the measured load must have been served")
        peak = measured["peak_vmhwm_kib"] / 1024
        for variant, docs in self.variants.items():
            for deployment, container in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    resources = container["resources"]
                    # Measured with as many cores as the pod may use: the scoring slots follow them.
                    self.assertEqual(cores(resources["limits"]["cpu"]), measured["cpus"])
                    self.assertGreaterEqual(mebibytes(resources["requests"]["memory"]), 1.5 * peak)
                    self.assertGreaterEqual(mebibytes(resources["limits"]["memory"]), 2 * peak)
                    self.assertGreaterEqual(mebibytes(resources["limits"]["memory"]),
                                            self.memory_bound(docs, container, measured),
                                            "the limit must hold the server's bound")

    def memory_bound(self, docs, container, measured) -> float:
        """The server's memory bound for the pod's settings, in MiB (docs/benchmarks.md, "What a
        server can use"): idle RSS + connections (<= 23 KiB each) + buffered bodies + 2 scoring
        slots per core, each <= 8 x the largest batch body."""
        config = self.config(docs, container)

        def setting(name: str) -> int:
            return int(config.get(name, flag_default(self.help, name.lower().replace("_", "-"))))

        # Its default follows the open-file limit (up to 4096): the pod must set it.
        self.assertIn("MAX_CONNECTIONS", config, "without MAX_CONNECTIONS the bound depends on the node")
        connections = int(config["MAX_CONNECTIONS"]) * 23 / 1024
        bodies = setting("MAX_BUFFERED_BODY_BYTES") / 2**20
        scoring = 2 * measured["cpus"] * 8 * setting("MAX_BATCH_BODY_BYTES") / 2**20
        return measured["idle_vmrss_kib"] / 1024 + connections + bodies + scoring

    def test_auth_settings_are_the_servers_names(self):
        for variant, docs in self.variants.items():
            for deployment, container in self.servers(docs):
                with self.subTest(variant=variant, deployment=deployment["metadata"]["name"]):
                    self.check_auth_settings(variant, docs, self.container_env(docs, container))

    def check_auth_settings(self, variant: str, docs: list[dict], env: dict):
        auth = {n for n in env if n.startswith("JWT_") or n.startswith("API_KEY") or "METRICS" in n}
        self.assertLessEqual(auth, AUTH_SETTINGS, "not a setting name of the server (issue 13)")
        if not variant.startswith("eks"):
            return
        if "JWT_SECRET_KEY" in env:
            # auth_mode = "secret": the key from the ExternalSecret's Secret, no Cognito settings.
            ref = env["JWT_SECRET_KEY"]["secretKeyRef"]
            (external,) = all_of(docs, "ExternalSecret")
            self.assertEqual(ref["name"], external["spec"]["target"]["name"])
            self.assertIn(ref["key"], [d["secretKey"] for d in external["spec"]["data"]])
            self.assertFalse({"JWT_JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE"} & set(env))
            self.assertEqual(env.get("JWT_ALGORITHMS"), "HS256")
        else:
            # Cognito: the pool's issuer, its JWKS under it, RS256 (what Cognito signs with).
            issuer = env.get("JWT_ISSUER", "")
            self.assertRegex(issuer, r"^https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/[a-z0-9-]+_[0-9A-Za-z]+$")
            self.assertEqual(env.get("JWT_JWKS_URL"), f"{issuer}/.well-known/jwks.json")
            self.assertTrue(env.get("JWT_AUDIENCE"), "Cognito access tokens: the app client ID (client_id)")
            self.assertEqual(env.get("JWT_ALGORITHMS"), "RS256")
            self.assertEqual(issuer.split("/")[2].split(".")[1], env["AWS_REGION"])
        # The scrapers send no token (Prometheus through the ServiceMonitor, the CloudWatch agent
        # on EKS): /metrics is public to the pods' network exactly where one of them scrapes it,
        # and only where the public ingress refuses it (test_ingress_routes_the_api_and_hides_metrics).
        scraped = bool(all_of(docs, "ServiceMonitor")) or variant.startswith("eks")
        self.assertEqual(env.get("METRICS_PUBLIC") == "true", scraped)

    def test_service_account_may_only_get_its_own_objects(self):
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                servers = self.servers(docs)
                accounts = {d["spec"]["template"]["spec"]["serviceAccountName"] for d, _ in servers}
                self.assertEqual(accounts, {CONTRACT["ServiceAccount"]}, "the IRSA role trusts this account only")
                account = one(docs, "ServiceAccount", CONTRACT["ServiceAccount"])
                # No API token in the pods (IRSA's web-identity token is a projected volume of its own).
                for deployment, _ in servers:
                    self.assertIs(deployment["spec"]["template"]["spec"].get("automountServiceAccountToken"), False)
                self.assertIs(account.get("automountServiceAccountToken"), False)
                own = set()
                for _, container in servers:
                    own |= {("configmaps", r["configMapRef"]["name"]) for r in container.get("envFrom", []) if "configMapRef" in r}
                    own |= {("secrets", e["valueFrom"]["secretKeyRef"]["name"]) for e in container.get("env", [])
                            if "secretKeyRef" in e.get("valueFrom", {})}
                subject = {"kind": "ServiceAccount", "name": account["metadata"]["name"],
                           "namespace": account["metadata"]["namespace"]}
                self.assertFalse([b for b in all_of(docs, "ClusterRoleBinding") if subject in b.get("subjects", [])])
                bindings = [b for b in all_of(docs, "RoleBinding") if subject in b["subjects"]]
                self.assertEqual(len(bindings), 1, "one RoleBinding for the API's service account")
                (binding,) = bindings
                self.assertEqual(binding["subjects"], [subject], "the API's RoleBinding binds nobody else")
                self.assertEqual(binding["roleRef"]["kind"], "Role")
                role = one(docs, "Role", binding["roleRef"]["name"])
                granted = set()
                for rule in role["rules"]:
                    self.assertEqual(rule["verbs"], ["get"])
                    self.assertEqual(rule["apiGroups"], [""])
                    self.assertTrue(rule.get("resourceNames"), "a rule without resourceNames covers every object")
                    granted |= {(r, n) for r in rule["resources"] for n in rule["resourceNames"]}
                self.assertEqual(granted, own, "get on the pods' own ConfigMaps and Secret, nothing else")

    def forecast_variants(self) -> dict[str, list[dict]]:
        found = {v: docs for v, docs in self.variants.items()
                 if any(d["metadata"]["name"] == FORECAST["Deployment"] for d in all_of(docs, "Deployment"))}
        # scripts/test-deploy.sh renders the forecast API on both kinds of cluster.
        self.assertLessEqual({"local-forecast", "eks-forecast"}, set(found))
        return found

    def test_forecast_api_has_seed_002s_names_and_model(self):
        for variant, docs in self.forecast_variants().items():
            with self.subTest(variant=variant):
                deployment = one(docs, "Deployment", FORECAST["Deployment"])
                container = self.container(deployment)
                pod = deployment["spec"]["template"]
                self.assertEqual(deployment["spec"]["selector"]["matchLabels"], FORECAST["label"])
                self.assertTrue(matches(FORECAST["label"], pod["metadata"]["labels"]))
                service = one(docs, "Service", FORECAST["Service"])
                self.assertEqual(service["spec"]["selector"], FORECAST["label"])
                self.assertEqual([(p["port"], self.named_port(container, p["targetPort"])) for p in service["spec"]["ports"]],
                                 [(80, self.port)])
                hpa = one(docs, "HorizontalPodAutoscaler", FORECAST["HorizontalPodAutoscaler"])
                self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"], FORECAST["Deployment"])
                pdb = one(docs, "PodDisruptionBudget", FORECAST["PodDisruptionBudget"])
                self.assertEqual(pdb["spec"]["selector"]["matchLabels"], FORECAST["label"])
                for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
                    self.assertEqual(one(docs, kind, FORECAST[kind])["metadata"]["namespace"], CONTRACT["namespace"])
                # The unqualified routes serve the forecast model, the only model these pods hold.
                env = self.container_env(docs, container)
                self.assertEqual(env.get("DEFAULT_MODEL"), FORECAST["model"])
                models = dict(item.split("=", 1) for item in env["MODELS"].split(","))
                self.assertEqual(list(models), [FORECAST["model"]])
                self.assertRegex(models[FORECAST["model"]], rf"^(embedded:{FORECAST['model']}|s3://[a-z0-9.-]+/.+\.tar\.gz)$")
                # The server refuses MODELS beside a non-empty single-model setting (the basket's S3
                # object or registry group, from the shared ConfigMap).
                for name in ("MODEL_URI", "MODEL_BUCKET", "MODEL_KEY", "MODEL_PACKAGE_GROUP"):
                    self.assertEqual(env.get(name, ""), "", f"{name} would make the server refuse MODELS")
                # The basket API keeps its own model settings: nothing of the forecast's leaks into them.
                basket = self.container_env(docs)
                self.assertNotIn("MODELS", basket)
                self.assertNotEqual(basket.get("DEFAULT_MODEL"), FORECAST["model"])

    def test_forecast_pod_is_the_basket_pod_but_for_its_labels_and_model(self):
        # Same image, probes, security context, resources, drain and spread: the component copies
        # base/server, and an overlay's image or pull policy reaches both Deployments.
        for variant, docs in self.forecast_variants().items():
            with self.subTest(variant=variant):
                basket, _ = self.api(docs)
                forecast = one(docs, "Deployment", FORECAST["Deployment"])

                def normalised(deployment: dict) -> dict:
                    spec = json.loads(json.dumps(deployment["spec"]))
                    del spec["selector"], spec["template"]["metadata"]["labels"]
                    for constraint in spec["template"]["spec"]["topologySpreadConstraints"]:
                        del constraint["labelSelector"]
                    (container,) = spec["template"]["spec"]["containers"]
                    container["envFrom"] = container["envFrom"][:1]  # the shared ConfigMap
                    return spec

                self.assertEqual(normalised(forecast), normalised(basket))
                self.assertEqual(forecast["metadata"].get("annotations"), basket["metadata"].get("annotations"),
                                 "the same checkov skips, for the same pod spec")

    def test_forecast_host_routes_seed_002s_paths_to_the_forecast_service(self):
        for variant, docs in self.forecast_variants().items():
            for ingress in all_of(docs, "Ingress"):
                with self.subTest(variant=variant):
                    rules = [r for r in ingress["spec"]["rules"] if r.get("host") == FORECAST["host"]]
                    self.assertEqual(len(rules), 1, f"one rule for {FORECAST['host']}")
                    by_path = {p["path"]: p for p in rules[0]["http"]["paths"]}
                    for path in FORECAST["paths"]:
                        self.assertIn(path, self.paths, "a route of the binary")
                        self.assertEqual(by_path[path]["pathType"], "Exact")
                        self.assertEqual(by_path[path]["backend"]["service"]["name"], FORECAST["Service"], path)
                    # /metrics stays inside the cluster on this host too (test_ingress_routes_…).
                    self.assertEqual(by_path["/metrics"]["backend"]["service"]["port"], {"name": "use-annotation"})
                    self.assertEqual(by_path["/"]["backend"]["service"]["name"], FORECAST["Service"])

    def test_external_secrets_objects_match_the_pinned_operator(self):
        facts = CHARTS["external-secrets"]["versions"][pinned_chart("external-secrets")]
        found = 0
        for variant, docs in self.variants.items():
            with self.subTest(variant=variant):
                stores = all_of(docs, "SecretStore")
                externals = all_of(docs, "ExternalSecret")
                if not (stores or externals):
                    continue
                found += 1
                for doc in stores + externals:
                    self.assertEqual(doc["apiVersion"], facts["crds"][doc["kind"]], doc["metadata"]["name"])
                (store,) = stores
                aws = store["spec"]["provider"]["aws"]
                self.assertEqual(aws["service"], "SecretsManager")
                self.assertRegex(aws["region"], r"^[a-z]{2}-[a-z]+-\d$")
                # The store reads AWS as a service account of its own, with an IRSA role, no token mounted.
                account = one(docs, "ServiceAccount", aws["auth"]["jwt"]["serviceAccountRef"]["name"])
                self.assertIn("eks.amazonaws.com/role-arn", account["metadata"]["annotations"])
                self.assertIs(account.get("automountServiceAccountToken"), False)
                deployment, _ = self.api(docs)
                self.assertNotEqual(account["metadata"]["name"], deployment["spec"]["template"]["spec"]["serviceAccountName"])
                (external,) = externals
                self.assertEqual(external["spec"]["secretStoreRef"], {"kind": "SecretStore", "name": store["metadata"]["name"]})
                self.assertTrue(external["spec"].get("refreshInterval"))
                self.assertEqual([d["remoteRef"]["key"] for d in external["spec"]["data"]], ["retail-api/jwt-secret-key"])
                # The operator may create tokens for that one account (rbac.serviceAccountTokenCreate = false).
                tokens = [r for r in all_of(docs, "Role") if any("serviceaccounts/token" in rule["resources"] for rule in r["rules"])]
                (token_role,) = tokens
                self.assertEqual(token_role["rules"], [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                                                        "resourceNames": [account["metadata"]["name"]], "verbs": ["create"]}])
                (token_binding,) = [b for b in all_of(docs, "RoleBinding") if b["roleRef"]["name"] == token_role["metadata"]["name"]]
                self.assertEqual(token_binding["subjects"], [{"kind": "ServiceAccount", "name": "external-secrets",
                                                              "namespace": "external-secrets"}])
        self.assertGreaterEqual(found, 1, "no variant renders the auth-secret component")


class LoadTest(unittest.TestCase):
    """The artillery files assert what they claim (artillery ignores `expect:` without its plugin),
    and the forecast scenario is seed 002's."""

    FILES = {"artillery.yml": CONTRACT["Service"], "forecast.yml": FORECAST["Service"]}

    def load(self, name: str) -> dict:
        return yaml.safe_load((ROOT / "loadtest" / name).read_text())

    def test_artillery_checks_every_answer(self):
        for name in self.FILES:
            with self.subTest(file=name):
                config = self.load(name)["config"]
                expect = config["plugins"]["expect"]
                self.assertIs(expect.get("expectDefault200"), True)
                self.assertIs(expect.get("reportFailuresAsErrors"), True)
                ensure = config["plugins"]["ensure"]
                conditions = [c["expression"] for c in ensure["conditions"] if c.get("strict", True)]
                self.assertIn("vusers.failed == 0", conditions, "a 403 (WAF) or any non-200 must fail the run")
                self.assertTrue(ensure["thresholds"])

    def test_in_cluster_environment_bypasses_the_alb(self):
        for name, service in self.FILES.items():
            with self.subTest(file=name):
                target = self.load(name)["config"]["environments"]["in-cluster"]["target"]
                self.assertEqual(target, f"http://{service}.{CONTRACT['namespace']}.svc.cluster.local")

    def test_scoring_calls_send_the_token(self):
        for name in self.FILES:
            for scenario in self.load(name)["scenarios"]:
                for step in scenario["flow"]:
                    if "post" in step:
                        with self.subTest(file=name, url=step["post"]["url"]):
                            self.assertEqual(step["post"]["headers"]["Authorization"],
                                             "Bearer {{ $processEnvironment.RETAIL_API_TOKEN }}")

    def test_forecast_scenario_is_seed_002s(self):
        scenario = self.load("forecast.yml")
        phases = [(p["duration"], p["arrivalRate"], p.get("rampTo")) for p in scenario["config"]["phases"]]
        self.assertEqual(phases, [(60, 10, None), (120, 20, None), (60, 5, None)])
        flows = {s["weight"]: s["flow"] for s in scenario["scenarios"]}
        self.assertEqual(sorted(flows), [30, 70])
        self.assertEqual(flows[30], [{"get": {"url": "/healthz"}}])
        (predict,) = flows[70]
        seed = {"features": {"store_id": 1, "product_id": 123, "date": "2024-01-01", "price": 29.99, "promotion": 0}}
        self.assertEqual((predict["post"]["url"], predict["post"]["json"]), ("/predict", seed))
        # ab posts the same body (loadtest/run.sh forecast-ab).
        self.assertEqual(json.loads((ROOT / "loadtest/forecast.json").read_text()), seed)
        paths = openapi_paths()
        self.assertLessEqual({"/healthz", "/predict"}, paths)


class LocalConfigServes(unittest.TestCase):
    """A local variant's ConfigMaps, as the pod's environment, start a server that passes
    scripts/verify.sh and then shuts down within its grace period on SIGTERM."""

    def serve_and_verify(self, variant: str, deployment_name: str, *verify_args: str):
        docs = load(variant)
        deployment = one(docs, "Deployment", deployment_name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        config = {}
        for source in container["envFrom"]:  # a later source wins, as in Kubernetes
            config.update(one(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **config, "HOST": "127.0.0.1", "PORT": "0"}
        server = subprocess.Popen([str(BIN), *container["args"]], env=env, stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=lambda: [json.loads(line) for line in server.stderr], daemon=True)
        try:
            addr = None
            for line in server.stderr:
                log = json.loads(line)  # LOG_FORMAT=json from the ConfigMap: every line is JSON
                if log.get("message") == "serving":
                    addr = log["addr"]
                    break
            self.assertIsNotNone(addr, "the server exited before serving")
            # Keep reading its log, so the server never blocks on a full pipe.
            reader.start()
            verify = subprocess.run([str(ROOT / "scripts/verify.sh"), f"http://{addr}", *verify_args],
                                    capture_output=True, text=True)
            print(verify.stdout)
            self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            grace = float(config["SHUTDOWN_GRACE_SECONDS"]) + float(config["DRAIN_DELAY_SECONDS"])
            self.assertEqual(server.wait(timeout=grace + 5), 0)
            self.assertLess(time.monotonic() - started, grace + 5)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            if reader.is_alive():
                reader.join(timeout=5)
            server.stderr.close()

    def test_configmap_environment_serves_and_drains(self):
        self.serve_and_verify("local", CONTRACT["Deployment"])

    def test_forecast_configmaps_serve_the_forecast(self):
        self.serve_and_verify("local-forecast", FORECAST["Deployment"], "--forecast")


if __name__ == "__main__":
    unittest.main()
