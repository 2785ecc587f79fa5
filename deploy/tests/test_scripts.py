"""The user-facing deployment scripts, run offline.

Each script runs with `bash` under its own `set -euo pipefail`, with no optional arguments (empty
arrays), from a directory outside the repository, and with fake `terraform`, `aws`, `kubectl`,
`docker`, `cargo`, `curl` and `uname` first on PATH: the fakes only record their argv, so a
dry run that calls any of them fails, and nothing reaches AWS.

Run by scripts/test-deploy.sh:
    python -m unittest deploy/tests/test_scripts.py
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
USER_FACING = ["scripts/deploy-eks.sh", "scripts/cleanup.sh", "scripts/eks-lib.sh", "scripts/build-push.sh",
               "scripts/verify.sh", "loadtest/run.sh"]
FAKES = ["terraform", "aws", "kubectl", "docker", "cargo", "curl"]


class Scripts(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="retail-api-scripts-")).resolve()
        self.log = self.tmp / "fake-calls.log"
        fakes = self.tmp / "bin"
        fakes.mkdir()
        for name in FAKES:
            fake = fakes / name
            fake.write_text(f'#!/bin/sh\necho "{name} $*" >>"{self.log}"\n')
            fake.chmod(0o755)
        # An Apple-silicon Mac, as far as the scripts can tell.
        (fakes / "uname").write_text('#!/bin/sh\necho arm64\n')
        (fakes / "uname").chmod(0o755)
        self.env = {"PATH": f"{fakes}:/usr/bin:/bin", "HOME": str(self.tmp), "AWS_ACCOUNT_ID": "123456789012"}
        self.cwd = self.tmp / "elsewhere"
        (self.cwd / "vars").mkdir(parents=True)
        (self.cwd / "vars/my.tfvars").write_text('region = "ap-southeast-1"\n')
        self.tfvars = self.cwd / "vars/my.tfvars"

    def script(self, path: str, *args: str, code: int = 0) -> str:
        result = subprocess.run(["bash", str(ROOT / path), *args], cwd=self.cwd, env=self.env,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, code, f"{path} {args}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def assertNoFakeRan(self):
        calls = self.log.read_text() if self.log.exists() else ""
        self.assertEqual(calls, "", "a dry run ran a command instead of printing it")

    def commands(self, output: str, prefix: str) -> list[str]:
        return [line for line in output.splitlines() if line.startswith(f"+ {prefix}")]

    def test_deploy_dry_run_resolves_var_files_from_the_callers_directory(self):
        live = ROOT / "deploy/k8s/overlays/eks-live/kustomization.yaml"
        before = live.read_text() if live.exists() else None
        for form in (["-var-file=vars/my.tfvars"], ["-var-file", "vars/my.tfvars"]):
            with self.subTest(form=form):
                out = self.script("scripts/deploy-eks.sh", "--dry-run", *form)
                applies = self.commands(out, "terraform")
                chdir = f"terraform -chdir={ROOT}/deploy/terraform"
                self.assertEqual(applies, [
                    f"+ {chdir} init -input=false",
                    f"+ {chdir} apply -input=false -var-file={self.tfvars}",
                    f"+ {chdir} apply -input=false -var-file={self.tfvars}",
                ])
                self.assertIn(f"+ kubectl apply -k {ROOT}/deploy/k8s/overlays/eks-live", out)
                self.assertNoFakeRan()
        self.assertEqual(live.read_text() if live.exists() else None, before, "the dry run wrote the live overlay")

    def test_deploy_dry_run_configures_cognito_authentication(self):
        # auth_mode's default: the pods verify the user pool's tokens (deploy/terraform/auth.tf).
        out = self.script("scripts/deploy-eks.sh", "--dry-run")
        for line in ("- JWT_JWKS_URL=<auth_jwks_url>", "- JWT_ISSUER=<auth_issuer>", "- JWT_AUDIENCE=<auth_audience>"):
            self.assertIn(line, out)
        self.assertNotIn("auth-secret", out)
        self.assertNoFakeRan()

    def test_dry_runs_with_no_optional_arguments(self):
        out = self.script("scripts/deploy-eks.sh", "--dry-run")
        self.assertIn("apply -input=false\n", out + "\n")
        out = self.script("scripts/cleanup.sh", "--dry-run")
        self.assertRegex(out, r"(?m)^\+ terraform -chdir=\S+ destroy -input=false$")
        self.assertNoFakeRan()

    def test_missing_var_file_is_an_error_before_anything_runs(self):
        self.script("scripts/deploy-eks.sh", "--dry-run", "-var-file=missing.tfvars", code=1)
        self.assertNoFakeRan()

    def test_cleanup_dry_run_deletes_the_controllers_leftovers_before_destroy(self):
        self.env["AUTO_APPROVE"] = "1"
        out = self.script("scripts/cleanup.sh", "--dry-run", "-var-file=vars/my.tfvars")
        lines = out.splitlines()

        def first(pattern: str) -> int:
            found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
            self.assertTrue(found, f"no command matches {pattern!r}:\n{out}")
            return found[0]

        destroy = first(rf"^\+ terraform -chdir={ROOT}/deploy/terraform destroy -input=false -auto-approve "
                        rf"-var-file={re.escape(str(self.tfvars))}$")
        listing = first(r"^\+ aws ec2 describe-security-groups .*Name=tag:elbv2\.k8s\.aws/cluster,Values=<cluster_name>")
        revoke = first(r"^\+ aws ec2 revoke-security-group-ingress ")
        delete_sg = first(r"^\+ aws ec2 delete-security-group .*--group-id <sg-id>")
        self.assertLess(listing, revoke)
        self.assertLess(revoke, delete_sg)
        self.assertLess(delete_sg, destroy, "security groups must go before terraform destroy (VPC)")
        first(r"^\+ aws logs describe-log-groups .*--log-group-name-prefix /aws/containerinsights/<cluster_name>/")
        first(r"^\+ aws logs delete-log-group .*--log-group-name <log-group>")
        self.assertNoFakeRan()

    def test_build_push_pushes_only_the_commit_for_the_nodes_platform(self):
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        out = self.script("scripts/build-push.sh", "--push", "--dry-run")
        (build,) = self.commands(out, "env DOCKER_BUILDKIT=1 docker build")
        self.assertIn(" --platform linux/amd64 ", build)
        pushes = self.commands(out, "docker push")
        self.assertEqual(pushes, [f"+ docker push 123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/retail-api:{commit}"])
        self.assertIn("--image-tag-mutability IMMUTABLE", out)
        self.assertNoFakeRan()

    def render_live_overlay(self, **env: str) -> list[dict]:
        """The overlay a dry run would write (overlays/eks-live), with its placeholders filled,
        rendered by kustomize from target/ (the dry run itself writes nothing)."""
        self.env.update(env)
        out = self.script("scripts/deploy-eks.sh", "--dry-run")
        lines = out.split("kustomization.yaml:\n", 1)[1].split("\n+ kubectl apply", 1)[0].splitlines()
        text = "\n".join(line[4:] for line in lines)
        values = {
            "region": "ap-southeast-1", "model_bucket": "retail-api-models-123456789012", "model_prefix": "models/",
            "ecr_repository_url": "123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/retail-api",
            "auth_jwks_url": "https://cognito-idp.ap-southeast-1.amazonaws.com/ap-southeast-1_abc/.well-known/jwks.json",
            "auth_issuer": "https://cognito-idp.ap-southeast-1.amazonaws.com/ap-southeast-1_abc",
            "auth_audience": "client123", "api_role_arn": "arn:aws:iam::123456789012:role/retail-api-api",
            "waf_acl_arn": "arn:aws:wafv2:ap-southeast-1:123456789012:regional/webacl/retail-api/1",
            "alb_logs_bucket": "retail-api-alb-logs-123456789012",
            "certificate_arn": "arn:aws:acm:ap-southeast-1:123456789012:certificate/1",
            "forecast_domain_name": "forecast.example.com",
        }
        text = re.sub(r"<([a-z_]+)>", lambda m: values[m.group(1)], text)
        self.assertNotRegex(text, r"<[^>]*>", "a placeholder without a test value")
        # From target/: the overlay's relative paths, one level deeper than overlays/eks-live.
        live = ROOT / "target/k8s-variants/eks-live-dry-run"
        live.mkdir(parents=True, exist_ok=True)
        text = re.sub(r"\.\./(eks[a-z-]*)\b", r"../../../deploy/k8s/overlays/\1", text)
        text = text.replace("../../components/", "../../../deploy/k8s/components/")
        (live / "kustomization.yaml").write_text(text)
        kubectl = Path(sys.executable).parent / "kubectl"
        rendered = subprocess.run([str(kubectl), "kustomize", str(live)], capture_output=True, text=True, check=True).stdout
        return [d for d in yaml.safe_load_all(rendered) if d]

    def test_live_overlay_deploys_the_pushed_image_everywhere(self):
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        image = f"123456789012.dkr.ecr.ap-southeast-1.amazonaws.com/retail-api:{commit}"
        for forecast in ("0", "1"):
            with self.subTest(FORECAST=forecast):
                docs = self.render_live_overlay(FORECAST=forecast)
                deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
                names = {"retail-api", "retail-forecast-api"} if forecast == "1" else {"retail-api"}
                self.assertEqual(set(deployments), names)
                for name, deployment in deployments.items():
                    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
                    self.assertEqual(images, [image], name)
                (ingress,) = [d for d in docs if d["kind"] == "Ingress"]
                hosts = [r.get("host") for r in ingress["spec"]["rules"]]
                self.assertEqual(hosts, ["forecast.example.com", None] if forecast == "1" else [None])
                if forecast == "1":
                    (config,) = [d for d in docs if d["metadata"]["name"].startswith("retail-forecast-api-config")]
                    self.assertEqual(config["data"]["MODELS"], "retail-sales-forecast=embedded:retail-sales-forecast")
                self.assertNoFakeRan()

    def test_help_and_usage_run_under_bash(self):
        for path in ("scripts/deploy-eks.sh", "scripts/cleanup.sh", "scripts/build-push.sh"):
            with self.subTest(path=path):
                self.assertIn("--dry-run", self.script(path, "--help"))
        self.script("scripts/verify.sh", code=2)
        self.script("loadtest/run.sh", code=2)
        self.assertNoFakeRan()

    def test_scripts_avoid_what_bash_3_2_lacks(self):
        # macOS ships bash 3.2: no associative arrays, -v tests, mapfile, case conversion or
        # negative indexes, and an empty "${arr[@]}" is an unbound variable under set -u there.
        banned = [r"declare\s+-A", r"\[\[\s+-v", r"\bmapfile\b", r"\breadarray\b", r"\$\{\w+(,,|\^\^)",
                  r"\$\{\w+\[-1\]\}", r"\blocal\s+-n\b"]
        for path in USER_FACING:
            text = (ROOT / path).read_text()
            code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
            with self.subTest(path=path):
                for pattern in banned:
                    self.assertNotRegex(code, pattern)
                unguarded = re.sub(r'\$\{(\w+)\[@\]\+"\$\{\1\[@\]\}"\}', "", code)
                self.assertNotRegex(unguarded, r'"\$\{\w+\[@\]\}"', 'expand arrays as ${a[@]+"${a[@]}"}')


class ForecastStub(BaseHTTPRequestHandler):
    """Answers as the contract says the forecast service does (DEFAULT_MODEL=retail-sales-forecast);
    `basket_answers` makes /predict answer as the basket API (a class label), `token` requires
    `Authorization: Bearer <token>` on the protected routes."""

    basket_answers = False
    token = None

    def log_message(self, *args):
        pass

    def reply(self, status: int, body, content_type: str = "application/json"):
        data = (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self) -> bool:
        if self.token and self.headers.get("Authorization") != f"Bearer {self.token}":
            self.reply(401, {"error": "missing token", "code": "unauthorized"})
            return False
        return True

    def answer(self, record: dict) -> dict:
        if self.basket_answers:
            return {"prediction": "MM", "label": "Mid Market", "model_version": "v1", "warnings": []}
        return {"prediction": 150.75 + record["features"]["promotion"], "model_version": "v1", "warnings": []}

    def do_GET(self):
        public = {
            "/health": {"status": "healthy", "timestamp": "2024-01-01T00:00:00Z"},
            "/healthz": {"status": "healthy", "timestamp": "2024-01-01T00:00:00Z"},
            "/ready": {"status": "ready"},
            "/openapi.json": {"openapi": "3.1.0"},
            "/version": {"version": "0.1.0"},
        }
        if self.path in public:
            return self.reply(200, public[self.path])
        if self.path == "/docs/":
            return self.reply(200, "<title>Swagger UI</title>", "text/html")
        if not self.authorised():
            return None
        if self.path == "/model-info":
            return self.reply(200, {"name": "retail-sales-forecast", "version": "v1"})
        if self.path == "/models":
            return self.reply(200, {"default": "retail-sales-forecast", "models": [{"name": "retail-sales-forecast"}]})
        if self.path == "/metrics":
            return self.reply(200, "retail_api_requests_total 1\n", "text/plain")
        return self.reply(404, {"error": "no route", "code": "not_found"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.authorised():
            return None
        if self.path == "/predict":
            if "features" not in body or body["features"]["price"] < 0.01:
                return self.reply(422, {"error": "invalid", "code": "invalid_input",
                                        "details": [{"field": "price", "reason": "must be >= 0.01"}]})
            return self.reply(200, {**self.answer(body), "request_id": "r1"})
        if self.path == "/batch-predict":
            if not all("features" in r for r in body["records"]):
                return self.reply(422, {"error": "invalid", "code": "invalid_input"})
            return self.reply(200, {"predictions": [self.answer(r) for r in body["records"]], "model_version": "v1"})
        return self.reply(404, {"error": "no route", "code": "not_found"})


class VerifyForecast(unittest.TestCase):
    """scripts/verify.sh --forecast against a stub of the forecast service, with the real curl."""

    def verify(self, handler, *args: str, token: str = "") -> subprocess.CompletedProcess:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RETAIL_API_TOKEN": token}
            return subprocess.run(["bash", str(ROOT / "scripts/verify.sh"), f"http://127.0.0.1:{server.server_port}", *args],
                                  env=env, capture_output=True, text=True, timeout=60)
        finally:
            server.shutdown()
            server.server_close()

    def test_forecast_service_passes(self):
        for args in (["--forecast"], ["--forecast", "--public"], ["--public", "--forecast"]):
            with self.subTest(args=args):
                result = self.verify(ForecastStub, *args)
                public = "--public" in args
                # --public expects the ALB's 404 on /metrics, which the stub (a pod) does not give.
                self.assertEqual(result.returncode, 1 if public else 0, result.stdout + result.stderr)
                self.assertIn("ok    POST /predict (seed forecast) answers a number", result.stdout)
                self.assertIn("ok    GET /healthz (seed 002)", result.stdout)
                self.assertIn("ok    GET /model-info is retail-sales-forecast (DEFAULT_MODEL)", result.stdout)
                self.assertNotIn("seed basket", result.stdout)

    def test_token_is_sent_and_required(self):
        handler = type("TokenStub", (ForecastStub,), {"token": "t0ken"})
        result = self.verify(handler, "--forecast", token="t0ken")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("ok    POST /predict without a credential is 401", result.stdout)
        result = self.verify(handler, "--forecast")
        self.assertEqual(result.returncode, 1)

    def test_a_class_label_is_not_a_forecast(self):
        # The basket API (or a forecast request routed to it) answers a string: not a forecast.
        handler = type("BasketStub", (ForecastStub,), {"basket_answers": True})
        result = self.verify(handler, "--forecast")
        self.assertEqual(result.returncode, 1)
        self.assertIn("FAIL  POST /predict (seed forecast) answers a number", result.stdout)
        self.assertIn("FAIL  POST /batch-predict (forecast)", result.stdout)

    def test_basket_checks_are_unchanged_without_the_flag(self):
        result = self.verify(ForecastStub)
        self.assertEqual(result.returncode, 1, "the stub is no basket API")
        self.assertIn("POST /predict (seed basket)", result.stdout)
        self.assertNotIn("forecast", result.stdout)

    def test_unknown_flag_is_a_usage_error(self):
        result = subprocess.run(["bash", str(ROOT / "scripts/verify.sh"), "http://127.0.0.1:9", "--forcast"],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)


if __name__ == "__main__":
    unittest.main()
