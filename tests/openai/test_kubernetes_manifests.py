"""deploy/kubernetes/: every manifest parses, and the pieces point at each other (the pool selects the
Deployment's pods on the port the server listens on; the route sends to the pool; the pods serve the picker's
default vLLM metric names, and the picker's alternative configuration for `--metrics-names cria` maps the pods
to Cria's own, whose names test_prompt_cache.py checks on a live server)."""

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


def test_the_pods_serve_the_pickers_default_metric_names():
    server = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    # The default `--metrics-names vllm-and-cria`: a picker left on its defaults reads the vllm: names.
    assert not any(arg.startswith("--metrics-names") for arg in server["args"]), server["args"]


def test_endpoint_picker_config_reads_the_pods_as_cria():
    config = yaml.safe_load((DIR / "epp" / "endpoint-picker-config.yaml").read_text())
    assert config["apiVersion"] == "inference.networking.x-k8s.io/v1alpha1"
    assert config["kind"] == "EndpointPickerConfig" and "dataLayer" in config["featureGates"]
    plugins = {p.get("name", p["type"]): p for p in config["plugins"]}
    params = plugins["model-server-protocol-metrics"]["parameters"]
    # Pods without the engine label (deployment.yaml's) get the default engine.
    labels = manifests()["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert labels.get(params["engineLabelKey"], params["defaultEngine"]) == params["defaultEngine"] == "cria"
    assert [e["name"] for e in params["engineConfigs"]] == ["cria"]
    [source] = config["data"]["sources"]
    assert source["pluginRef"] in plugins
    assert [e["pluginRef"] for e in source["extractors"]] == ["model-server-protocol-metrics"]
    profile_refs = {p["pluginRef"] for prof in config["schedulingProfiles"] for p in prof["plugins"]}
    assert profile_refs <= set(plugins)
