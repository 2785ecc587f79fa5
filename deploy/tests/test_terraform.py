"""Structural tests of deploy/terraform: the security properties the deployment relies on.

The AWS provider cannot be downloaded here, so `terraform validate`/`plan` cannot run; these
tests read the HCL (python-hcl2) and assert what a plan would have to show. The API's IRSA
subject is compared with the rendered EKS manifests, not with a copy.

Run by scripts/test-deploy.sh (python-hcl2 lives in its own venv: it breaks checkov's):
    RENDERED_DIR=target/k8s-rendered python -m unittest deploy/tests/test_terraform.py
"""

import datetime
import json
import os
import re
import unittest
from pathlib import Path

import hcl2
import yaml

TESTS = Path(__file__).resolve().parent
TF = TESTS.parent / "terraform"
ROOT = TESTS.parents[1]
RENDERED = Path(os.environ["RENDERED_DIR"])
# Input names of each module at the tag its pin resolves to (deploy/tests/module_inputs.py).
MODULE_INPUTS = json.loads((TESTS / "module-inputs.json").read_text())
# appVersion and supported Kubernetes versions of each chart version (with their sources).
CHARTS = json.loads((TESTS / "chart-versions.json").read_text())
# Arguments Terraform itself takes in a module block, not the module's inputs.
CONTRACT_NAMESPACE = "mlops"
META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}


def parse() -> dict:
    merged: dict = {}
    for path in sorted(TF.glob("*.tf")):
        with path.open() as file:
            for key, found in hcl2.load(file).items():
                merged.setdefault(key, []).extend(found)
    return merged


def unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def blocks(tf: dict, kind: str, type_: str | None = None) -> dict:
    """name -> body of `kind "type" "name"` (resource/data) or `kind "name"` (module/variable/output)."""
    out = {}
    for block in tf.get(kind, []):
        for first, body in block.items():
            if type_ is None:
                out[unquote(first)] = body
            elif unquote(first) == type_:
                out.update({unquote(name): inner for name, inner in body.items()})
    return out


def statements(tf: dict, name: str) -> list[dict]:
    return blocks(tf, "data", "aws_iam_policy_document")[name]["statement"]


def arguments(body: dict) -> dict:
    return {k: v for k, v in body.items() if not k.startswith("__")}


def module_key(source: str) -> str:
    """terraform-aws-modules/iam/aws//modules/x -> x; terraform-aws-modules/ecr/aws -> ecr."""
    return source.split("//modules/")[1] if "//modules/" in source else source.split("/")[1]


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = version.lstrip("v").split(".")
    return int(major), int(minor_)


def agent_values() -> dict:
    """The amazon-cloudwatch-observability add-on's configuration_values, as main.tf loads them."""
    return yaml.safe_load((TF / "cloudwatch-observability.yaml").read_text())


def value_paths(values: dict, opaque: set[str], prefix: str = "") -> list[str]:
    """Dotted key paths of `values`, not descending into the `opaque` ones (free-form values)."""
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in opaque:
            paths += value_paths(value, opaque, f"{path}.")
        else:
            paths.append(path)
    return paths


def exposed_series() -> set[str]:
    """The series names the binary exposes (deploy/monitoring/metrics.txt; histograms' too)."""
    names = set()
    for line in (ROOT / "deploy/monitoring/metrics.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind, *_ = line.split()
            names |= {f"{name}_sum", f"{name}_count", f"{name}_bucket"} if kind == "histogram" else {name}
    return names


class Terraform(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tf = parse()
        cls.locals = {k: unquote(v) for block in cls.tf["locals"] for k, v in block.items() if not k.startswith("__")}
        cls.modules = blocks(cls.tf, "module")
        cls.variables = blocks(cls.tf, "variable")
        cls.eks = [d for d in yaml.safe_load_all((RENDERED / "eks.yaml").read_text()) if d]
        cls.eks_secret = [d for d in yaml.safe_load_all((RENDERED / "eks-secret.yaml").read_text()) if d]

    def resolve(self, text: str) -> str:
        return re.sub(r"\$\{local\.([a-z_]+)\}", lambda m: self.locals[m.group(1)], unquote(text))

    def default(self, variable: str):
        return unquote(self.variables[variable]["default"])

    def test_modules_are_pinned_community_modules(self):
        expected = {"vpc", "eks", "iam", "s3-bucket", "ecr"}
        used = set()
        for name, module in self.modules.items():
            source = unquote(module["source"])
            self.assertTrue(source.startswith("terraform-aws-modules/"), name)
            used.add(source.split("/")[1])
            self.assertRegex(unquote(module["version"]), r"^~> \d+\.\d+$", name)
        self.assertEqual(used, expected)
        for block in self.tf["terraform"]:
            for providers in block["required_providers"]:
                for name, spec in providers.items():
                    if not name.startswith("__"):
                        self.assertRegex(unquote(spec["version"]), r"^~> \d+\.\d+$", name)

    def test_api_role_trusts_only_the_api_service_account(self):
        (account,) = [d for d in self.eks if d["kind"] == "ServiceAccount"]
        (deployment,) = [d for d in self.eks if d["kind"] == "Deployment"]
        self.assertEqual(deployment["spec"]["template"]["spec"]["serviceAccountName"], account["metadata"]["name"])
        subject = f"{account['metadata']['namespace']}:{account['metadata']['name']}"
        self.assertIn("eks.amazonaws.com/role-arn", account["metadata"]["annotations"])

        api = self.modules["api_irsa"]
        self.assertEqual(api["role_policy_arns"], {"api": "${aws_iam_policy.api.arn}"})
        (provider,) = api["oidc_providers"].values()
        self.assertEqual([self.resolve(s) for s in provider["namespace_service_accounts"]], [subject])
        self.assertEqual(provider["provider_arn"], "${module.eks.oidc_provider_arn}")

    def test_every_irsa_role_trusts_one_named_service_account(self):
        roles = {n: m for n, m in self.modules.items() if "iam-role-for-service-accounts-eks" in m["source"]}
        self.assertEqual(set(roles), {
            "api_irsa", "lb_controller_irsa", "cluster_autoscaler_irsa", "cloudwatch_observability_irsa",
            "external_secrets_irsa", "batch_scoring_irsa",
        })
        for name, module in roles.items():
            (provider,) = module["oidc_providers"].values()
            (subject,) = provider["namespace_service_accounts"]
            self.assertRegex(self.resolve(subject), r"^[a-z0-9-]+:[a-z0-9-]+$", name)

    def test_api_policy_is_least_privilege(self):
        actions = {}
        for statement in statements(self.tf, "api"):
            for action in statement["actions"]:
                actions[unquote(action)] = statement
        self.assertEqual(set(actions), {
            "s3:GetObject", "s3:ListBucket", "kms:Decrypt",
            "sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages",
        })
        for action, statement in actions.items():
            resources = [unquote(r) for r in statement["resources"]]
            self.assertNotIn("Deny", unquote(statement.get("effect", '"Allow"')))
            if action == "sagemaker:ListModelPackages":
                self.assertEqual(resources, ["*"])  # it takes no resource-level permissions
                self.assertEqual(len(statement["actions"]), 1)
            else:
                self.assertNotIn("*", resources, action)
        self.assertEqual([unquote(r) for r in actions["s3:GetObject"]["resources"]],
                         ["${module.model_bucket.s3_bucket_arn}/${var.model_prefix}*"])
        (condition,) = actions["s3:ListBucket"]["condition"]
        self.assertEqual(unquote(condition["variable"]), "s3:prefix")
        self.assertEqual(actions["kms:Decrypt"]["resources"], ["${aws_kms_key.models.arn}"])
        for resource in actions["sagemaker:DescribeModelPackage"]["resources"]:
            self.assertIn("${var.model_package_group}", resource)
        self.assertEqual(self.default("model_package_group"), "retail-price-sensitivity-models")

    def test_batch_scoring_role_reads_its_input_and_writes_its_output_only(self):
        component = ROOT / "deploy/k8s/components/batch-scoring/serviceaccount.yaml"
        account = yaml.safe_load(component.read_text())
        module = self.modules["batch_scoring_irsa"]
        self.assertEqual(module["role_policy_arns"], {"batch": "${aws_iam_policy.batch_scoring.arn}"})
        (provider,) = module["oidc_providers"].values()
        self.assertEqual([self.resolve(s) for s in provider["namespace_service_accounts"]],
                         [f"mlops:{account['metadata']['name']}"])
        self.assertTrue(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/retail-api-batch-scoring"))
        actions = {}
        for statement in statements(self.tf, "batch_scoring"):
            for action in statement["actions"]:
                actions[unquote(action)] = [unquote(r) for r in statement["resources"]]
        bucket = "${module.model_bucket.s3_bucket_arn}"
        self.assertEqual(actions, {
            "s3:GetObject": [f"{bucket}/${{var.batch_input_prefix}}*"],
            "s3:ListBucket": [bucket],
            "s3:PutObject": [f"{bucket}/${{var.batch_output_prefix}}*"],
            "s3:AbortMultipartUpload": [f"{bucket}/${{var.batch_output_prefix}}*"],
            "kms:Decrypt": ["${aws_kms_key.models.arn}"],
            "kms:GenerateDataKey": ["${aws_kms_key.models.arn}"],
        })

    def assert_private_bucket(self, name: str) -> dict:
        bucket = self.modules[name]
        for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets",
                     "attach_deny_insecure_transport_policy"):
            self.assertIs(bucket[flag], True, f"{name}.{flag}")
        self.assertEqual(unquote(bucket["object_ownership"]), "BucketOwnerEnforced")
        self.assertIs(bucket["versioning"]["enabled"], True)
        return bucket["server_side_encryption_configuration"]["rule"]["apply_server_side_encryption_by_default"]

    def test_model_bucket_is_encrypted_versioned_and_private(self):
        sse = self.assert_private_bucket("model_bucket")
        self.assertEqual(unquote(sse["sse_algorithm"]), "aws:kms")
        self.assertEqual(sse["kms_master_key_id"], "${aws_kms_key.models.arn}")
        key = blocks(self.tf, "resource", "aws_kms_key")["models"]
        self.assertIs(key["enable_key_rotation"], True)

    def test_alb_log_bucket_is_encrypted_and_private(self):
        sse = self.assert_private_bucket("alb_logs_bucket")
        self.assertEqual(unquote(sse["sse_algorithm"]), "AES256")  # the only one ALB log delivery supports
        self.assertIs(self.modules["alb_logs_bucket"]["attach_lb_log_delivery_policy"], True)

    def test_ecr_scans_on_push(self):
        ecr = self.modules["ecr"]
        self.assertIs(ecr["repository_image_scan_on_push"], True)
        self.assertEqual(unquote(ecr["repository_image_tag_mutability"]), "IMMUTABLE")

    def test_waf_rate_limits_and_blocks_sqli_and_bad_inputs(self):
        acl = blocks(self.tf, "resource", "aws_wafv2_web_acl")["api"]
        self.assertEqual(unquote(acl["scope"]), "REGIONAL")
        rules = {unquote(r["name"]): r for r in acl["rule"]}
        (rate,) = rules["rate-limit-per-ip"]["statement"][0]["rate_based_statement"]
        self.assertEqual(rate["limit"], "${var.waf_rate_limit}")
        self.assertEqual(self.default("waf_rate_limit"), 3000)
        self.assertEqual(unquote(rate["aggregate_key_type"]), "IP")
        self.assertIn("block", rules["rate-limit-per-ip"]["action"][0])
        managed = {unquote(r["statement"][0]["managed_rule_group_statement"][0]["name"])
                   for r in rules.values() if "managed_rule_group_statement" in r["statement"][0]}
        self.assertEqual(managed, {"AWSManagedRulesSQLiRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"})
        self.assertIn("api", blocks(self.tf, "resource", "aws_wafv2_web_acl_logging_configuration"))

    def test_cluster_encrypts_secrets_logs_and_enforces_network_policy(self):
        eks = self.modules["eks"]
        self.assertEqual([unquote(r) for r in eks["cluster_encryption_config"]["resources"]], ["secrets"])
        self.assertEqual({unquote(t) for t in eks["cluster_enabled_log_types"]},
                         {"api", "audit", "authenticator", "controllerManager", "scheduler"})
        addons = {unquote(k) for k in eks["cluster_addons"]}
        self.assertEqual(addons, {"coredns", "kube-proxy", "vpc-cni", "amazon-cloudwatch-observability"})
        self.assertIn("enableNetworkPolicy", eks["cluster_addons"]["vpc-cni"]["configuration_values"])
        (group,) = eks["eks_managed_node_groups"].values()
        self.assertEqual(group["capacity_type"], "${var.node_capacity_type}")
        self.assertEqual(unquote(group["metadata_options"]["http_tokens"]), "required")

    def test_cloudwatch_agent_scrapes_the_apis_metrics(self):
        addon = self.modules["eks"]["cluster_addons"]["amazon-cloudwatch-observability"]
        self.assertIn('file("${path.module}/cloudwatch-observability.yaml")', addon["configuration_values"])
        values = agent_values()
        chart = json.loads((TESTS / "addon-values.json").read_text())
        self.assertLessEqual(set(value_paths(values, set(chart["value_paths"]))), set(chart["value_paths"]))
        config = values["agent"]["config"]
        # Setting agent.config replaces the add-on's default: Container Insights must stay in it.
        for section, default in chart["default_agent_config"]["logs"]["metrics_collected"].items():
            self.assertEqual(config["logs"]["metrics_collected"][section], default, section)
        self.assertTrue(values["agent"]["prometheus"]["targetAllocator"]["enabled"], "each pod scraped once")
        (job,) = values["agent"]["prometheus"]["config"]["scrape_configs"]
        keep = {tuple(r["source_labels"]): r for r in job["relabel_configs"] if r.get("action") == "keep"}
        self.assertEqual(job["kubernetes_sd_configs"], [{"role": "pod", "namespaces": {"names": [CONTRACT_NAMESPACE]}}])
        # It keeps exactly the API Deployments' pods (basket and forecast), on their container port.
        keep_app = re.compile(keep[("__meta_kubernetes_pod_label_app",)]["regex"])
        keep_port = re.compile(keep[("__meta_kubernetes_pod_container_port_number",)]["regex"])
        eks_forecast = [d for d in yaml.safe_load_all((RENDERED / "eks-forecast.yaml").read_text()) if d]
        deployments = [d for d in eks_forecast if d["kind"] == "Deployment" and d["metadata"]["namespace"] == CONTRACT_NAMESPACE]
        self.assertEqual(len(deployments), 2, "the basket and forecast APIs")
        for deployment in deployments:
            pod = deployment["spec"]["template"]
            self.assertTrue(keep_app.fullmatch(pod["metadata"]["labels"]["app"]), deployment["metadata"]["name"])
            (container,) = pod["spec"]["containers"]
            self.assertTrue(any(keep_port.fullmatch(str(p["containerPort"])) for p in container["ports"]))
            env = {k: v for d in eks_forecast if d["kind"] == "ConfigMap" for k, v in d.get("data", {}).items()}
            self.assertEqual(env.get("METRICS_PUBLIC"), "true", "the agent sends no token")

    def test_app_alarms_watch_metrics_the_agent_publishes(self):
        declarations = agent_values()["agent"]["config"]["logs"]["metrics_collected"]["prometheus"]["emf_processor"]
        (job,) = agent_values()["agent"]["prometheus"]["config"]["scrape_configs"]
        published = {}  # metric name -> dimension sets
        for declaration in declarations["metric_declaration"]:
            # The labels it matches on, joined by ";" as the agent does: this job's, PSI values.
            scraped = ";".join({"job": job["job_name"], "statistic": "psi"}[l] for l in declaration["source_labels"])
            self.assertRegex(scraped, declaration["label_matcher"])
            for selector in declaration["metric_selectors"]:
                names = [n for n in exposed_series() if re.fullmatch(selector.strip("^$"), n)]
                self.assertEqual(len(names), 1, f"{selector} selects no metric the binary exposes")
                published.setdefault(names[0], []).extend(frozenset(d) for d in declaration["dimensions"])
        labels = {t["target_label"] for t in job["relabel_configs"] + job["metric_relabel_configs"] if "target_label" in t}
        alarms = blocks(self.tf, "resource", "aws_cloudwatch_metric_alarm")
        app = {n: a for n, a in alarms.items() if n.startswith("app_")}
        self.assertEqual(set(app), {"app_error_ratio", "app_latency", "app_drift"})
        for name, alarm in app.items():
            metrics = [alarm] if "metric_name" in alarm else [q["metric"][0] for q in alarm.get("metric_query", []) if "metric" in q]
            for dynamic in alarm.get("dynamic", []):
                for body in dynamic.values():
                    template = body["content"][0]["metric"][0]
                    metrics += [dict(template, metric_name=m) for m in body["for_each"].values()]
            if "for_each" in alarm:
                metrics = [dict(alarm, metric_name=m) for m in alarm["for_each"].values()]
            self.assertTrue(metrics, name)
            for metric in metrics:
                metric_name = unquote(metric["metric_name"])
                self.assertEqual(unquote(metric["namespace"]), "${local.app_metrics.namespace}", name)
                self.assertIn(metric_name, published, f"{name}: the agent does not publish {metric_name}")
                dimensions = {"ClusterName", "Namespace"} | set(re.findall(r"(\w+)\s*=", metric["dimensions"].split("dimensions,")[-1]))
                self.assertIn(frozenset(dimensions), published[metric_name], f"{name}: {metric_name} by {dimensions}")
                self.assertLessEqual(dimensions - {"ClusterName", "statistic"}, labels | {"Namespace"}, name)

    def test_network_policy_admits_the_vpc(self):
        (policy,) = [d for d in self.eks if d["kind"] == "NetworkPolicy"]
        cidrs = [p["ipBlock"]["cidr"] for rule in policy["spec"]["ingress"] for p in rule["from"] if "ipBlock" in p]
        self.assertEqual(cidrs, [self.default("vpc_cidr")])

    def test_alarms_and_cost_alarm(self):
        alarms = blocks(self.tf, "resource", "aws_cloudwatch_metric_alarm")
        self.assertEqual(set(alarms), {
            "error_rate", "elb_5xx", "healthy_hosts", "p99_latency", "unhealthy_hosts", "monthly_cost",
            "monthly_lb_cost", "app_error_ratio", "app_latency", "app_drift",
        })
        for name in ("monthly_cost", "monthly_lb_cost"):
            self.assertEqual(alarms[name]["provider"], "${aws.billing}")
            self.assertEqual(unquote(alarms[name]["namespace"]), "AWS/Billing")
        providers = [p for block in self.tf["provider"] for name, p in block.items() if unquote(name) == "aws"]
        billing = [unquote(p.get("region")) for p in providers if unquote(p.get("alias")) == "billing"]
        self.assertEqual(billing, ["us-east-1"])
        self.assertEqual(unquote(alarms["p99_latency"]["extended_statistic"]), "p99")

    def test_a_total_outage_raises_alarms(self):
        alarms = blocks(self.tf, "resource", "aws_cloudwatch_metric_alarm")
        alb = {n: a for n, a in alarms.items() if unquote(a.get("namespace", "")) != "AWS/Billing"}
        for name, alarm in alb.items():  # every ALB alarm chooses what missing data means
            self.assertIn(unquote(alarm.get("treat_missing_data", "")), {"breaching", "notBreaching"}, name)

        # No pod healthy, per target group; no data means no registered target: an outage too.
        healthy = alarms["healthy_hosts"]
        self.assertEqual(unquote(healthy["metric_name"]), "HealthyHostCount")
        self.assertEqual(set(healthy["dimensions"]), {"TargetGroup", "LoadBalancer"})
        self.assertEqual(unquote(healthy["comparison_operator"]), "LessThanThreshold")
        self.assertEqual(healthy["threshold"], 1)
        self.assertEqual(unquote(healthy["treat_missing_data"]), "breaching")

        elb = alarms["elb_5xx"]
        self.assertEqual(unquote(elb["metric_name"]), "HTTPCode_ELB_5XX_Count")
        self.assertEqual(unquote(elb["statistic"]), "Sum")

        # The error ratio counts the ALB's own 5xx, and is guarded against 0 requests.
        rate = alarms["error_rate"]
        queries = {unquote(q["id"]): q for q in rate.get("metric_query", [])}
        for dynamic in rate.get("dynamic", []):
            for body in dynamic.values():
                for key, metric in body["for_each"].items():
                    queries[key] = {"metric": [{"metric_name": metric}]}
        metrics = {unquote(q["metric"][0]["metric_name"]) for q in queries.values() if "metric" in q}
        self.assertEqual(metrics, {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "RequestCount"})
        (returned,) = [q for q in queries.values() if q.get("return_data") is True]
        expression = unquote(returned["expression"])
        guard = re.match(r"^IF\((\w+) > 0, (.+), 0\)$", expression)
        self.assertIsNotNone(guard, f"{expression}: divide only when there were requests")
        divisor = guard.group(1)
        self.assertTrue(guard.group(2).endswith(f"/ {divisor}"), expression)
        ids_filled = set(re.findall(r"FILL\((\w+), 0\)", " ".join(unquote(q.get("expression", "")) for q in queries.values())))
        self.assertLessEqual({"requests", "target5xx", "elb5xx"}, ids_filled)
        self.assertIn("elb5xx", unquote(queries[divisor]["expression"]))  # RequestCount omits refused requests

    def test_alarm_topics_are_encrypted_with_keys_cloudwatch_may_use(self):
        keys = blocks(self.tf, "resource", "aws_kms_key")
        documents = blocks(self.tf, "data", "aws_iam_policy_document")

        def document_statements(reference: str) -> list[dict]:
            name = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", reference).group(1)
            found = list(documents[name].get("statement", []))
            for source in documents[name].get("source_policy_documents", []):
                found += document_statements(source)
            return found

        topics = blocks(self.tf, "resource", "aws_sns_topic")
        self.assertEqual(set(topics), {"alarms", "billing_alarms"})
        for name, topic in topics.items():
            match = re.fullmatch(r"\$\{aws_kms_key\.(\w+)\.(arn|id)\}", topic["kms_master_key_id"])
            self.assertIsNotNone(match, f"{name}: an AWS managed key's policy cannot admit CloudWatch")
            key = keys[match.group(1)]
            self.assertEqual(key.get("provider"), topic.get("provider"), f"{name}: the key must be in the topic's region")
            publish = [st for st in document_statements(key["policy"])
                       if any(unquote(i) == "cloudwatch.amazonaws.com"
                              for p in st.get("principals", []) for i in p["identifiers"])]
            self.assertTrue(publish, f"{name}: the key policy has no statement for cloudwatch.amazonaws.com")
            actions = {unquote(a) for st in publish for a in st["actions"]}
            self.assertLessEqual({"kms:Decrypt", "kms:GenerateDataKey*"}, actions, name)

    def test_alb_lookup_needs_no_flag(self):
        # A redeploy must find the ALB again by itself: a flag forgotten once destroys the DNS alias.
        self.assertNotIn("alb_lookup", self.variables)
        self.assertNotIn("alb_lookup", (ROOT / "scripts" / "deploy-eks.sh").read_text())
        (lbs,) = blocks(self.tf, "data", "aws_lbs").values()
        tags = {unquote(k): v for k, v in lbs["tags"].items()}
        for value in tags.values():  # known at plan time, so counts can depend on the result
            self.assertNotIn("module.", value)
        self.assertEqual(self.resolve(tags["ingress.k8s.aws/stack"]), f"{self.api_namespace()}/retail-api-ingress")
        self.assertEqual(tags["elbv2.k8s.aws/cluster"], "${local.name}")
        self.assertEqual(self.modules["eks"]["cluster_name"], "${local.name}")
        dependent = [r for kind in ("aws_cloudwatch_dashboard", "aws_cloudwatch_metric_alarm", "aws_route53_record")
                     for r in blocks(self.tf, "resource", kind).values() if "alb" in str(r.get("count", ""))]
        self.assertGreaterEqual(len(dependent), 6)
        for resource in dependent:
            self.assertIn("local.alb_found", resource["count"])

    def test_target_group_lookup_names_the_basket_apis_target_group(self):
        # With components/forecast the Ingress has a target group per Service; the stack tag alone
        # matches both, and data "aws_lb_target_group" fails on more than one match. The controller
        # (v2.17.1, pkg/deploy/tracking/provider.go) tags each <namespace>/<ingress>-<service>:<port>,
        # the port as the Ingress's backend names it.
        (lookup,) = blocks(self.tf, "data", "aws_lb_target_group").values()
        tags = {unquote(k): self.resolve(v) for k, v in lookup["tags"].items()}
        forecast = [d for d in yaml.safe_load_all((RENDERED / "eks-forecast.yaml").read_text()) if d]
        for docs in (self.eks, forecast):
            (ingress,) = [d for d in docs if d["kind"] == "Ingress"]
            (hostless,) = [r for r in ingress["spec"]["rules"] if not r.get("host")]
            root = {p["path"]: p["backend"]["service"] for p in hostless["http"]["paths"]}["/"]
            port = root["port"].get("name", root["port"].get("number"))
            meta = ingress["metadata"]
            self.assertEqual(tags["ingress.k8s.aws/stack"], f"{meta['namespace']}/{meta['name']}")
            self.assertEqual(tags["ingress.k8s.aws/resource"], f"{meta['namespace']}/{meta['name']}-{root['name']}:{port}")

    def api_namespace(self) -> str:
        (ingress,) = [d for d in self.eks if d["kind"] == "Ingress"]
        self.assertEqual(ingress["metadata"]["name"], "retail-api-ingress")
        return ingress["metadata"]["namespace"]

    def test_s3_gateway_endpoint_on_private_route_tables(self):
        endpoints = [e for e in blocks(self.tf, "resource", "aws_vpc_endpoint").values()
                     if unquote(e["service_name"]).endswith(".s3")]
        self.assertEqual(len(endpoints), 1)
        (endpoint,) = endpoints
        self.assertEqual(unquote(endpoint["vpc_endpoint_type"]), "Gateway")
        self.assertEqual(endpoint["route_table_ids"], "${module.vpc.private_route_table_ids}")

    def test_node_group_names_its_ami_type(self):
        (group,) = self.modules["eks"]["eks_managed_node_groups"].values()
        self.assertEqual(unquote(group.get("ami_type")), "AL2023_x86_64_STANDARD")

    def test_domain_name_requires_hosted_zone_id(self):
        certificate = blocks(self.tf, "resource", "aws_acm_certificate")["api"]
        (lifecycle,) = certificate["lifecycle"]
        (precondition,) = lifecycle.get("precondition", [{}])
        condition = precondition.get("condition", "")
        match = re.fullmatch(r'\$\{can\(regex\("(.+)", var\.hosted_zone_id\)\)\}', condition)
        self.assertIsNotNone(match, condition)
        pattern = match.group(1)
        self.assertRegex(self.default_or_tfvars("hosted_zone_id"), pattern)
        self.assertNotRegex(self.default("hosted_zone_id"), pattern)  # the default: no zone

    def default_or_tfvars(self, variable: str):
        with (TF / "prod.tfvars").open() as file:
            return unquote(hcl2.load(file).get(variable, self.variables[variable].get("default")))

    def test_state_backend_example_is_a_partial_s3_configuration(self):
        with (TF / "backend.tf.example").open() as file:
            (terraform,) = hcl2.load(file)["terraform"]
        (backend,) = terraform["backend"]
        self.assertEqual(arguments(backend['"s3"']), {})  # values come from -backend-config
        with (TF / "backend.hcl.example").open() as file:
            values = arguments(hcl2.load(file))
        self.assertLessEqual({"bucket", "key", "region", "encrypt"}, set(values))
        self.assertIs(values["encrypt"], True)
        self.assertIn("-backend-config", (TF / "backend.tf.example").read_text())

    def test_module_arguments_exist_in_the_pinned_module(self):
        for name, module in self.modules.items():
            key = module_key(unquote(module["source"]))
            facts = MODULE_INPUTS[key]
            pin = re.fullmatch(r"~> (\d+)\.(\d+)", unquote(module["version"]))
            # The pin's lower bound is the version whose inputs were read (v2.4.0 for "~> 2.4").
            self.assertEqual(minor(facts["tag"]), (int(pin.group(1)), int(pin.group(2))), f"{name}: pin vs {facts['tag']}")
            self.assert_inputs(name, arguments(module), facts, META_ARGUMENTS)
            if key == "eks":
                for group, body in module.get("eks_managed_node_groups", {}).items():
                    self.assert_inputs(f"{name}.{group}", arguments(body), MODULE_INPUTS["eks-managed-node-group"], set())

    def assert_inputs(self, where: str, given: dict, facts: dict, meta: set):
        inputs = facts["variables"]
        unknown = set(given) - set(inputs) - meta
        self.assertFalse(unknown, f"{where}: not inputs of {facts['repository']} {facts['tag']}")
        # create_X = false with attach_X = true attaches var.X, which must then be given.
        for create in (v for v in inputs if v.startswith("create_") and f"attach_{v[7:]}" in inputs):
            thing = create[7:]
            created = given.get(create, inputs[create])
            attached = given.get(f"attach_{thing}", inputs[f"attach_{thing}"])
            self.assertIsInstance(created, bool, f"{where}.{create}: a literal, so this test can read it")
            self.assertIsInstance(attached, bool, f"{where}.attach_{thing}: a literal, so this test can read it")
            if attached and not created:
                self.assertIn(thing, given, f"{where}: attach_{thing} without create_{thing} needs {thing}")

    def test_charts_match_the_kubernetes_version(self):
        versions = {self.default("kubernetes_version"), self.default_or_tfvars("kubernetes_version")}
        self.assertEqual(len(versions), 1, "prod.tfvars and the default name the same Kubernetes version")
        (kubernetes,) = versions
        releases = blocks(self.tf, "resource", "helm_release")
        self.assertEqual({unquote(r["chart"]) for r in releases.values()}, {c for c in CHARTS if not c.startswith("_")})
        for release in releases.values():
            chart, version = unquote(release["chart"]), unquote(release["version"])
            facts = CHARTS[chart]["versions"].get(version)
            self.assertIsNotNone(facts, f"{chart} {version}: record its appVersion in chart-versions.json")
            if chart == "cluster-autoscaler":
                self.assertEqual(minor(facts["appVersion"]), minor(kubernetes), f"{chart} {version} ships {facts['appVersion']}")
            else:
                self.assertLessEqual(minor(facts["min_kubernetes"]), minor(kubernetes), f"{chart} {version}")
                if "max_kubernetes" in facts:
                    self.assertLessEqual(minor(kubernetes), minor(facts["max_kubernetes"]), f"{chart} {version}")

    def test_kubernetes_version_is_in_standard_support(self):
        eks = self.modules["eks"]
        self.assertEqual(unquote(eks["cluster_upgrade_policy"]["support_type"]), "STANDARD")
        calendar = CHARTS["_eks_end_of_standard_support"]
        end = datetime.date.fromisoformat(calendar["versions"][self.default("kubernetes_version")])
        # A new cluster on a version past this date is billed extended support (docs, "Costs").
        self.assertGreater(end, datetime.date.today(), f"kubernetes_version left standard support on {end}")

    def test_addons_wait_for_the_nodes_and_the_load_balancer_controller(self):
        releases = blocks(self.tf, "resource", "helm_release")
        controller = releases["aws_load_balancer_controller"]
        self.assertRegex(controller["values"][0], r"enableServiceMutatorWebhook = false")
        for name, release in releases.items():
            self.assertIsNot(release.get("wait", True), False, name)
            self.assertIn("${module.eks}", release.get("depends_on", []), f"{name}: needs the node group")
            if name != "aws_load_balancer_controller":
                self.assertIn("${helm_release.aws_load_balancer_controller}", release.get("depends_on", []), name)

    # --- authentication (issue 13, deploy/terraform/auth.tf) ---------------------------------

    def test_auth_mode_defaults_to_cognito_and_each_mode_makes_only_its_own(self):
        self.assertEqual(self.default("auth_mode"), "cognito")
        (validation,) = self.variables["auth_mode"]["validation"]
        self.assertIn('["cognito", "secret"]', validation["condition"])
        self.assertEqual(self.locals["auth_cognito"], '${var.auth_mode == "cognito"}')
        self.assertEqual(self.locals["auth_secret"], '${var.auth_mode == "secret"}')
        cognito = ["aws_cognito_user_pool", "aws_cognito_resource_server", "aws_cognito_user_pool_client",
                   "aws_cognito_user_pool_domain"]
        secret = ["aws_kms_key", "aws_kms_alias", "aws_secretsmanager_secret", "aws_iam_policy", "helm_release"]
        for kind in cognito:
            for name, body in blocks(self.tf, "resource", kind).items():
                self.assertEqual(body.get("count"), "${local.auth_cognito ? 1 : 0}", f"{kind}.{name}")
        for kind in secret:
            (body,) = [b for n, b in blocks(self.tf, "resource", kind).items() if n in ("auth", "jwt", "external_secrets")]
            self.assertEqual(body.get("count"), "${local.auth_secret ? 1 : 0}", kind)
        self.assertEqual(self.modules["external_secrets_irsa"]["count"], "${local.auth_secret ? 1 : 0}")

    def test_resource_server_defines_the_three_scopes(self):
        server = blocks(self.tf, "resource", "aws_cognito_resource_server")["api"]
        self.assertEqual(unquote(server["identifier"]), "${local.auth_resource_server}")
        self.assertEqual(self.locals["auth_resource_server"], "retail-api")
        scopes = [unquote(s["scope_name"]) for s in server["scope"]]
        self.assertEqual(sorted(scopes), ["metrics:read", "model:read", "predict"])
        for scope in server["scope"]:
            self.assertTrue(1 <= len(unquote(scope["scope_description"])) <= 256)
            # ScopeName pattern [\x21\x23-\x2E\x30-\x5B\x5D-\x7E]+ (Cognito API reference): no "/", '"' or "\".
            self.assertRegex(unquote(scope["scope_name"]), r'^[\x21\x23-\x2E\x30-\x5B\x5D-\x7E]+$')

    def test_app_client_allows_only_client_credentials(self):
        client = blocks(self.tf, "resource", "aws_cognito_user_pool_client")["api"]
        self.assertIs(client["generate_secret"], True)
        self.assertIs(client["allowed_oauth_flows_user_pool_client"], True)
        self.assertEqual([unquote(f) for f in client["allowed_oauth_flows"]], ["client_credentials"])
        for absent in ("callback_urls", "logout_urls", "explicit_auth_flows", "supported_identity_providers"):
            self.assertNotIn(absent, client)
        prefix = "${aws_cognito_resource_server.api[0].identifier}/"
        scopes = [unquote(s) for s in client["allowed_oauth_scopes"]]
        self.assertTrue(all(s.startswith(prefix) for s in scopes), scopes)
        self.assertEqual(sorted(s[len(prefix):] for s in scopes), ["model:read", "predict"])  # no metrics:read
        pool = blocks(self.tf, "resource", "aws_cognito_user_pool")["api"]
        self.assertIs(pool["admin_create_user_config"][0]["allow_admin_create_user_only"], True)  # no sign-up
        self.assertEqual(unquote(pool["deletion_protection"]), "INACTIVE")  # cleanup.sh can destroy it
        self.assertIn("api", blocks(self.tf, "resource", "aws_cognito_user_pool_domain"))

    def test_external_secrets_policy_reads_only_the_one_secret(self):
        found = statements(self.tf, "external_secrets")
        actions = {unquote(a): s for s in found for a in s["actions"]}
        self.assertEqual(set(actions), {"secretsmanager:GetSecretValue", "kms:Decrypt"})
        self.assertEqual(actions["secretsmanager:GetSecretValue"]["resources"], ["${aws_secretsmanager_secret.jwt[0].arn}"])
        self.assertEqual(actions["kms:Decrypt"]["resources"], ["${aws_kms_key.auth[0].arn}"])
        (via,) = actions["kms:Decrypt"]["condition"]
        self.assertEqual(unquote(via["variable"]), "kms:ViaService")
        for statement in found:
            self.assertEqual(len(statement["resources"]), 1)
            self.assertNotIn("Deny", unquote(statement.get("effect", '"Allow"')))
        secret = blocks(self.tf, "resource", "aws_secretsmanager_secret")["jwt"]
        self.assertEqual(secret["kms_key_id"], "${aws_kms_key.auth[0].arn}")
        self.assertIs(blocks(self.tf, "resource", "aws_kms_key")["auth"]["enable_key_rotation"], True)
        # The rendered ExternalSecret reads the secret Terraform names (with the default name).
        (external,) = [d for d in self.eks_secret if d["kind"] == "ExternalSecret"]
        name = unquote(secret["name"]).replace("${local.name}", self.default("name"))
        self.assertEqual([d["remoteRef"]["key"] for d in external["spec"]["data"]], [name])
        role = self.modules["external_secrets_irsa"]
        self.assertEqual(role["role_policy_arns"], {"secret": "${aws_iam_policy.external_secrets[0].arn}"})
        self.assertEqual(blocks(self.tf, "resource", "aws_iam_policy")["external_secrets"]["policy"],
                         "${data.aws_iam_policy_document.external_secrets[0].json}")

    def test_external_secrets_role_trusts_the_secret_stores_account_only(self):
        (store,) = [d for d in self.eks_secret if d["kind"] == "SecretStore"]
        account = store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"]
        (provider,) = self.modules["external_secrets_irsa"]["oidc_providers"].values()
        self.assertEqual([self.resolve(s) for s in provider["namespace_service_accounts"]],
                         [f"{store['metadata']['namespace']}:{account}"])
        release = blocks(self.tf, "resource", "helm_release")["external_secrets"]
        values = release["values"][0]
        self.assertRegex(values, r"serviceAccountTokenCreate = false")  # tokens only via the component's Role
        self.assertNotIn("role-arn", values)  # the controller itself has no AWS role
        (binding,) = [d for d in self.eks_secret if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "external-secrets-token"]
        (subject,) = binding["subjects"]
        self.assertEqual((subject["namespace"], subject["name"]),
                         (self.resolve(release["namespace"]), self.locals["eso_service_account"]))

    def test_deploy_script_reads_only_declared_outputs(self):
        script = (ROOT / "scripts" / "deploy-eks.sh").read_text()
        used = set(re.findall(r"\$\(out ([a-z_]+)\)", script))
        self.assertLessEqual({"auth_mode", "auth_jwks_url", "auth_issuer", "auth_audience", "auth_secret_name",
                              "external_secrets_role_arn"}, used)
        self.assertLessEqual(used, set(blocks(self.tf, "output")))

    def test_variables_typed_and_described_outputs_described(self):
        for name, variable in self.variables.items():
            self.assertIn("type", variable, name)
            self.assertTrue(unquote(variable.get("description", "")), name)
        outputs = blocks(self.tf, "output")
        for name, output in outputs.items():
            self.assertTrue(unquote(output.get("description", "")), name)
        self.assertLessEqual({"cluster_name", "kubeconfig_command", "api_role_arn", "lb_controller_role_arn",
                              "ecr_repository_url", "model_bucket"}, set(outputs))

    def test_prod_tfvars_sets_only_declared_variables(self):
        with (TF / "prod.tfvars").open() as file:
            values = {k for k in hcl2.load(file) if not k.startswith("__")}
        self.assertLessEqual(values, set(self.variables))


if __name__ == "__main__":
    unittest.main()
