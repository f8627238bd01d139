"""Where the Calrissian engine finds the cluster: HTTP_PROXY, KUBECONFIG, ~/.kube/config, or the
service account of the pod the service runs in."""

from __future__ import annotations

import pytest

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:{port}"}}]
users: [{name: u, user: {token: from-kubeconfig}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    for variable in (
        "KUBECONFIG",
        "HTTP_PROXY",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_http_proxy_mode_talks_to_the_proxy_without_credentials(
    service, clean_environment, monkeypatch
):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:8001")

    configuration = service.kubernetes_client().configuration

    assert configuration.host == "http://127.0.0.1:8001"
    assert not configuration.api_key


def test_kubeconfig_wins_over_the_home_config(service, clean_environment, monkeypatch):
    (clean_environment / ".kube").mkdir()
    (clean_environment / ".kube" / "config").write_text(KUBECONFIG.replace("{port}", "1"))
    explicit = clean_environment / "kubeconfig"
    explicit.write_text(KUBECONFIG.replace("{port}", "2"))
    monkeypatch.setenv("KUBECONFIG", str(explicit))

    assert service.kubernetes_client().configuration.host == "http://127.0.0.1:2"


def test_the_home_config_is_read_without_kubeconfig(service, clean_environment):
    (clean_environment / ".kube").mkdir()
    (clean_environment / ".kube" / "config").write_text(KUBECONFIG.replace("{port}", "1"))

    assert service.kubernetes_client().configuration.host == "http://127.0.0.1:1"


def test_inside_a_pod_the_service_account_is_used(service, clean_environment, monkeypatch):
    account = clean_environment / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("from-the-service-account")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(service, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")

    configuration = service.kubernetes_client().configuration

    assert configuration.host == "https://10.0.0.1:443"
    assert configuration.api_key["authorization"].lower() == "bearer from-the-service-account"
    assert configuration.ssl_ca_cert == str(account / "ca.crt")


def test_transient_faults_are_retried_by_the_client(service, clean_environment, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:8001")

    retries = service.kubernetes_client().configuration.retries

    assert {429, 500, 502, 503, 504} <= set(retries.status_forcelist)
    assert retries.allowed_methods is None and retries.total >= 3


def test_without_any_access_the_message_says_what_to_set(service, clean_environment):
    with pytest.raises(service.EngineUnavailable, match="set KUBECONFIG"):
        service.kubernetes_client()
