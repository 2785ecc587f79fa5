"""Tests of deploy/monitoring: the alert rules, the Grafana dashboard and where they are loaded.

- every retail_api_* metric the dashboard and the rules query is one the app exposes
  (deploy/monitoring/metrics.txt; _bucket/_sum/_count of a histogram map to its name), and every
  label matcher on it names one of its labels;
- every dashboard expression parses (promtool check rules over a generated rules file), every
  panel reads the ${datasource} variable;
- every alert has a severity, a summary and a description, and alerts.test.yml has a firing
  and a not-firing case for it (promtool test rules itself runs in scripts/test-deploy.sh);
- the PrometheusRule of deploy/k8s/components/monitoring holds exactly alerts.yml's groups;
- the compose Prometheus loads alerts.yml, and the optional Grafana provisions this dashboard.

Run by scripts/test-deploy.sh:
    python -m unittest deploy/tests/test_monitoring.py
Regenerate the PrometheusRule after editing alerts.yml:
    python deploy/tests/test_monitoring.py --write-prometheusrule
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy/monitoring"
ALERTS = MONITORING / "alerts.yml"
RULE = ROOT / "deploy/k8s/components/monitoring/prometheusrule.yaml"
COMPOSE = ROOT / "deploy/compose"
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
NAME = re.compile(r"\bretail_api_[a-z0-9_]+")
# A metric name directly followed by its label matchers.
SELECTOR = re.compile(r"\b(retail_api_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*,?')


def exposed() -> dict[str, tuple[str, set[str]]]:
    """metrics.txt: name -> (type, label names)."""
    found = {}
    for line in (MONITORING / "metrics.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind, *labels = line.split()
            found[name] = (kind, set(labels[0].split(",")) if labels else set())
    return found


def dashboard() -> dict:
    return json.loads((MONITORING / "dashboard.json").read_text())


def dashboard_exprs() -> list[str]:
    exprs = []

    def walk(panels):
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard()["panels"])
    return exprs


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def base_name(name: str, metrics: dict) -> str:
    """The metrics.txt entry a series name belongs to (a histogram's series map to its name)."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and metrics.get(base, ("",))[0] == "histogram":
            return base
    return name


class IndentedDumper(yaml.SafeDumper):
    """Indents sequences under their key (yamllint's indent-sequences)."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def prometheus_rule_text() -> str:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "retail-api",
            "namespace": "mlops",
            # The label kube-prometheus-stack selects rules by (its Helm release name), as for
            # the ServiceMonitor of components/servicemonitor.
            "labels": {"app": "retail-api", "release": "kube-prometheus-stack"},
        },
        "spec": yaml.safe_load(ALERTS.read_text()),
    }
    header = ("# Generated from deploy/monitoring/alerts.yml by\n"
              "#   python deploy/tests/test_monitoring.py --write-prometheusrule\n"
              "# Do not edit: deploy/tests/test_monitoring.py fails when the two differ.\n"
              "# yamllint disable rule:line-length\n")
    return header + yaml.dump(rule, Dumper=IndentedDumper, sort_keys=False, width=100, allow_unicode=True)


class Monitoring(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.metrics = exposed()
        cls.exprs = {"dashboard": dashboard_exprs(), "alerts.yml": [r["expr"] for r in alert_rules()]}

    def test_queried_metrics_are_exposed(self):
        for source, exprs in self.exprs.items():
            used = {base_name(n, self.metrics) for e in exprs for n in NAME.findall(e)}
            self.assertTrue(used, source)
            with self.subTest(source=source):
                self.assertFalse(used - set(self.metrics), f"{source} queries metrics the app does not expose")

    def test_label_matchers_name_the_metrics_labels(self):
        for source, exprs in self.exprs.items():
            for expr in exprs:
                for name, matchers in SELECTOR.findall(expr):
                    base = base_name(name, self.metrics)
                    kind, labels = self.metrics[base]
                    allowed = labels | TARGET_LABELS | ({"le"} if name.endswith("_bucket") and kind == "histogram" else set())
                    used = {m.group(1) for m in MATCHER.finditer(matchers)}
                    self.assertEqual(MATCHER.sub("", matchers).strip(), "", f"{source}: unparsed matchers {matchers}")
                    self.assertFalse(used - allowed, f"{source}: {name} has no label {used - allowed}")

    def test_histogram_suffixes_only_on_histograms(self):
        # retail_api_requests_total_count is no series; retail_api_request_duration_seconds alone neither.
        for source, exprs in self.exprs.items():
            for name in {n for e in exprs for n in NAME.findall(e)}:
                base = base_name(name, self.metrics)
                if base == name:
                    self.assertNotEqual(self.metrics.get(name, ("",))[0], "histogram", f"{source}: {name} without a suffix")

    def test_dashboard_covers_the_issue_panels(self):
        queried = {base_name(n, self.metrics) for e in self.exprs["dashboard"] for n in NAME.findall(e)}
        self.assertLessEqual({
            "retail_api_requests_total", "retail_api_request_duration_seconds", "retail_api_limits_hit_total",
            "retail_api_requests_in_flight", "retail_api_model_info", "retail_api_predictions_total",
            "retail_api_feature_drift", "retail_api_model_reloads_total", "retail_api_auth_failures_total",
        }, queried)
        quantiles = {q for e in self.exprs["dashboard"]
                     for q in re.findall(r"histogram_quantile\((0\.\d+),\s*sum by \(le\) \(rate\(retail_api_request_duration_seconds_bucket", e)}
        self.assertEqual(quantiles, {"0.5", "0.9", "0.99"})

    def test_dashboard_reads_the_datasource_variable(self):
        board = dashboard()
        variables = {v["name"]: v for v in board["templating"]["list"]}
        self.assertEqual((variables["datasource"]["type"], variables["datasource"]["query"]), ("datasource", "prometheus"))
        ids = []

        def walk(panels):
            for panel in panels:
                ids.append(panel["id"])
                if panel["type"] != "row":
                    self.assertEqual(panel["datasource"]["uid"], "${datasource}", panel["title"])
                    for target in panel["targets"]:
                        self.assertEqual(target.get("datasource", panel["datasource"])["uid"], "${datasource}", panel["title"])
                walk(panel.get("panels", []))

        walk(board["panels"])
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")

    def test_dashboard_expressions_parse(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian package prometheus) is needed")
        rules = [{"record": f"dashboard:expr_{i}",
                  "expr": e.replace("$__rate_interval", "5m").replace("$model", ".*")}
                 for i, e in enumerate(self.exprs["dashboard"])]
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as file:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, file)
            file.flush()
            result = subprocess.run([promtool, "check", "rules", file.name], capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_alert_is_documented_and_tested_both_ways(self):
        tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())
        self.assertEqual(tests["rule_files"], ["alerts.yml"])
        cases = [case for test in tests["tests"] for case in test.get("alert_rule_test", [])]
        rules = alert_rules()
        self.assertEqual(len({r["alert"] for r in rules}), len(rules), "alert names are unique")
        for rule in rules:
            with self.subTest(alert=rule["alert"]):
                self.assertIn(rule["labels"]["severity"], {"critical", "warning"})
                self.assertTrue(rule["annotations"]["summary"].strip())
                self.assertGreater(len(rule["annotations"]["description"]), 100, "say what to check")
                mine = [c for c in cases if c["alertname"] == rule["alert"]]
                self.assertTrue([c for c in mine if c.get("exp_alerts")], "no firing case")
                self.assertTrue([c for c in mine if not c.get("exp_alerts")], "no not-firing case")
        self.assertLessEqual({c["alertname"] for c in cases}, {r["alert"] for r in rules})

    def test_prometheus_rule_holds_the_alert_rules(self):
        rule = yaml.safe_load(RULE.read_text())
        self.assertEqual(rule["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(rule["kind"], "PrometheusRule")
        self.assertEqual(rule["metadata"]["namespace"], "mlops")
        self.assertEqual(rule["spec"], yaml.safe_load(ALERTS.read_text()),
                         "regenerate: python deploy/tests/test_monitoring.py --write-prometheusrule")
        self.assertEqual(RULE.read_text(), prometheus_rule_text(), "regenerate it (see the module docstring)")
        component = yaml.safe_load((RULE.parent / "kustomization.yaml").read_text())
        self.assertEqual(component["kind"], "Component")
        self.assertIn(RULE.name, component["resources"])

    def test_scrape_job_is_retail_api_everywhere(self):
        # The rules select job="retail-api": compose's job name, and the ServiceMonitor's jobLabel
        # (a label of the Services it selects, whose value becomes the job).
        prometheus = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
        self.assertEqual([j["job_name"] for j in prometheus["scrape_configs"]], ["retail-api"])
        monitor = yaml.safe_load((ROOT / "deploy/k8s/components/servicemonitor/servicemonitor.yaml").read_text())
        label = monitor["spec"]["jobLabel"]
        self.assertEqual(monitor["spec"]["selector"]["matchLabels"][label], "retail-api")
        for expr in self.exprs["alerts.yml"]:
            for _, matchers in SELECTOR.findall(expr):
                self.assertIn('job="retail-api"', matchers, expr)

    def test_compose_prometheus_loads_the_alert_rules(self):
        compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
        volumes = compose["services"]["prometheus"]["volumes"]
        mounts = {v.split(":")[1]: (COMPOSE / v.split(":")[0]).resolve() for v in volumes}
        for config in ("prometheus.yml", "prometheus-auth.yml"):
            with self.subTest(config=config):
                rule_files = yaml.safe_load((COMPOSE / config).read_text())["rule_files"]
                self.assertEqual([mounts.get(f) for f in rule_files], [ALERTS])

    def test_optional_grafana_provisions_this_dashboard(self):
        compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
        grafana = compose["services"]["grafana"]
        self.assertEqual(grafana["profiles"], ["grafana"])  # not started by a plain `up`
        self.assertRegex(grafana["image"], r"^grafana/grafana:\d+\.\d+\.\d+$")
        mounts = {v.split(":")[1]: (COMPOSE / v.split(":")[0]).resolve() for v in grafana["volumes"]}
        provisioning = mounts["/etc/grafana/provisioning"]
        (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
        self.assertEqual((source["type"], source["url"]), ("prometheus", "http://prometheus:9090"))
        (provider,) = yaml.safe_load((provisioning / "dashboards/retail-api.yml").read_text())["providers"]
        path = provider["options"]["path"]
        self.assertEqual(mounts[path], MONITORING, "the dashboards folder is deploy/monitoring")
        self.assertTrue((MONITORING / "dashboard.json").exists())


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-prometheusrule"]:
        RULE.write_text(prometheus_rule_text())
        print(f"wrote {RULE.relative_to(ROOT)}")
    else:
        unittest.main()
