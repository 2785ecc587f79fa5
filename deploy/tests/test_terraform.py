"""Structural tests of deploy/terraform: the security properties the deployment relies on.

The AWS provider cannot be downloaded here, so `terraform validate`/`plan` cannot run; these
tests read the HCL (python-hcl2) and assert what a plan would have to show. The API's IRSA
subject is compared with the rendered EKS manifests, not with a copy.

Run by scripts/test-deploy.sh (python-hcl2 lives in its own venv: it breaks checkov's):
    RENDERED_DIR=target/k8s-rendered python -m unittest deploy/tests/test_terraform.py
"""

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
# Arguments Terraform itself takes in a module block, not the module's inputs.
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


class Terraform(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tf = parse()
        cls.locals = {k: unquote(v) for block in cls.tf["locals"] for k, v in block.items() if not k.startswith("__")}
        cls.modules = blocks(cls.tf, "module")
        cls.variables = blocks(cls.tf, "variable")
        cls.eks = [d for d in yaml.safe_load_all((RENDERED / "eks.yaml").read_text()) if d]

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

    def test_network_policy_admits_the_vpc(self):
        (policy,) = [d for d in self.eks if d["kind"] == "NetworkPolicy"]
        cidrs = [p["ipBlock"]["cidr"] for rule in policy["spec"]["ingress"] for p in rule["from"] if "ipBlock" in p]
        self.assertEqual(cidrs, [self.default("vpc_cidr")])

    def test_alarms_and_cost_alarm(self):
        alarms = blocks(self.tf, "resource", "aws_cloudwatch_metric_alarm")
        self.assertEqual(set(alarms), {
            "target_5xx_rate", "p99_latency", "unhealthy_hosts", "monthly_cost", "monthly_lb_cost",
        })
        for name in ("monthly_cost", "monthly_lb_cost"):
            self.assertEqual(alarms[name]["provider"], "${aws.billing}")
            self.assertEqual(unquote(alarms[name]["namespace"]), "AWS/Billing")
        providers = [p for block in self.tf["provider"] for name, p in block.items() if unquote(name) == "aws"]
        billing = [unquote(p.get("region")) for p in providers if unquote(p.get("alias")) == "billing"]
        self.assertEqual(billing, ["us-east-1"])
        self.assertEqual(unquote(alarms["p99_latency"]["extended_statistic"]), "p99")

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
