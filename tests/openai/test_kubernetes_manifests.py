"""deploy/kubernetes/: every manifest parses, and the pieces point at each other (the pool selects the
Deployment's pods on the port the server listens on; the route sends to the pool)."""

import pathlib

import yaml

DIR = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def manifests():
    docs = {}
    for path in sorted(DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
            docs[doc["kind"]] = doc
    return docs


def test_manifests_parse_and_fit_together():
    docs = manifests()
    assert set(docs) == {"Deployment", "Service", "InferencePool", "HTTPRoute"}
    pool = docs["InferencePool"]
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    pod = docs["Deployment"]["spec"]["template"]
    assert pool["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    server = pod["spec"]["containers"][0]
    port = int(server["args"][server["args"].index("--port") + 1])
    assert [p["containerPort"] for p in server["ports"]] == [port]
    assert pool["spec"]["targetPorts"] == [{"number": port}]
    backends = [b for rule in docs["HTTPRoute"]["spec"]["rules"] for b in rule["backendRefs"]]
    assert backends == [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": pool["metadata"]["name"]}]
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
