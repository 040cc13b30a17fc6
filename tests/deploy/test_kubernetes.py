"""deploy/kubernetes: schema-valid for a recent Kubernetes, and consistent with itself,
the image and the manifests script (names, ports, paths, uids).

Validated offline with kubernetes-validate's bundled schemas (strict: unknown
fields are errors); no cluster is reached. `kubectl kustomize` (offline) is
also run where kubectl is installed.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

from .deploy_helpers import DEPLOY, load_documents, load_script, tool, validate_kubernetes

KUBERNETES = DEPLOY / "kubernetes"
MANIFESTS = ("namespace.yaml", "statefulset.yaml", "service.yaml", "networkpolicy.yaml")


def objects() -> dict[tuple[str, str], dict]:
    found = {}
    for name in MANIFESTS:
        for document in load_documents(KUBERNETES / name):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def statefulset() -> dict:
    return objects()[("StatefulSet", "mpc-ledger-party")]


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(MANIFESTS)
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == set(MANIFESTS)


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_schema_valid(name):
    validate_kubernetes(load_documents(KUBERNETES / name))


def test_kustomize_build_is_schema_valid():
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert {d["kind"] for d in documents} == {
        "Namespace",
        "StatefulSet",
        "Service",
        "NetworkPolicy",
    }
    assert all(d["metadata"].get("namespace", "mpc-ledger") == "mpc-ledger" for d in documents)
    validate_kubernetes(documents)


def test_schema_validation_catches_a_misspelt_field():
    """The validator is strict: a typo is an error, not silently dropped."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    broken = statefulset()
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37.0", strict=True)


def test_one_replica_one_writer():
    spec = statefulset()["spec"]
    assert spec["replicas"] == 1
    claim = spec["volumeClaimTemplates"][0]
    assert claim["spec"]["accessModes"] in (["ReadWriteOncePod"], ["ReadWriteOnce"])
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    template = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()


def test_pod_runs_as_the_image_user_without_privileges():
    pod = statefulset()["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == context["runAsGroup"] == context["fsGroup"] == 10001
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile and "--uid 10001" in dockerfile
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"] + pod["initContainers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= container["resources"].keys()


def test_keys_reach_the_daemon_0600_and_read_only():
    pod = statefulset()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret = volumes["party-keys-secret"]["secret"]
    assert secret["defaultMode"] == 0o400
    assert volumes["party-keys"]["emptyDir"]["medium"] == "Memory"
    (init,) = pod["initContainers"]
    script = " ".join(init["command"])
    assert "install -m 0600" in script
    init_mounts = {m["name"]: m for m in init["volumeMounts"]}
    assert init_mounts["party-keys-secret"]["readOnly"] is True
    (party,) = pod["containers"]
    mounts = {m["name"]: m for m in party["volumeMounts"]}
    assert "party-keys-secret" not in mounts, "the daemon must not read the 0440 Secret files"
    assert mounts["party-keys"]["readOnly"] is True
    assert mounts["party-config"]["readOnly"] is True
    for container in pod["containers"] + pod["initContainers"]:
        for mount in container["volumeMounts"]:
            assert mount["name"] in volumes or mount["name"] == "data", mount


def test_paths_and_names_match_the_manifests_script():
    script = load_script("make_party_manifests")
    pod = statefulset()["spec"]["template"]["spec"]
    (party,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in party["volumeMounts"]}
    assert mounts["party-config"] == script.CONFIG_DIR
    assert mounts["party-keys"] == script.KEYS_DIR
    assert mounts["data"] == script.DATA_DIR
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["party-config"]["configMap"]["name"] == f"{script.DEFAULT_NAME}-config"
    assert volumes["party-keys-secret"]["secret"]["secretName"] == f"{script.DEFAULT_NAME}-keys"
    ports = {p["name"]: p["containerPort"] for p in party["ports"]}
    assert script.DEFAULT_LISTEN.endswith(f":{ports['grpc']}")
    assert script.DEFAULT_METRICS_LISTEN.endswith(f":{ports['metrics']}")
    assert statefulset()["metadata"]["name"] == script.DEFAULT_NAME


def test_probes_run_the_mtls_health_script_the_image_ships():
    (party,) = statefulset()["spec"]["template"]["spec"]["containers"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = party[probe]["exec"]["command"]
        assert command[:2] == ["python", "/opt/mpc-ledger/bin/party_healthcheck.py"]
        assert "/etc/mpc-ledger/party.toml" in command
        timeout = float(command[command.index("--timeout") + 1])
        assert timeout < party[probe]["timeoutSeconds"]
    assert "scripts/party_healthcheck.py" in dockerfile and "/opt/mpc-ledger/bin/" in dockerfile


def test_services_and_network_policy_expose_only_what_they_should():
    found = objects()
    (party,) = statefulset()["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in party["ports"]}
    labels = statefulset()["spec"]["template"]["metadata"]["labels"]
    internal = found[("Service", "mpc-ledger-party")]
    public = found[("Service", "mpc-ledger-party-public")]
    assert statefulset()["spec"]["serviceName"] == "mpc-ledger-party"
    for service in (internal, public):
        assert service["spec"]["selector"].items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
    assert [p["targetPort"] for p in public["spec"]["ports"]] == ["grpc"], "metrics not public"
    assert public["spec"]["externalTrafficPolicy"] == "Local"
    policy = found[("NetworkPolicy", "mpc-ledger-party")]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    grpc_rule, metrics_rule = policy["ingress"]
    assert [p["port"] for p in grpc_rule["ports"]] == [ports["grpc"]]
    assert all("ipBlock" in peer for peer in grpc_rule["from"])
    assert [p["port"] for p in metrics_rule["ports"]] == [ports["metrics"]]
    (monitoring,) = metrics_rule["from"]
    assert monitoring["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {("TCP", 7001), ("UDP", 53), ("TCP", 53)}
    sources = {b["ipBlock"]["cidr"] for b in grpc_rule["from"]}
    assert sources == set(public["spec"]["loadBalancerSourceRanges"])
