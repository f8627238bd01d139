"""An offline Kubernetes for tests: a fake API server, a fake node and a local Calrissian.

``fake_kube.FakeKube`` serves the Kubernetes API over real HTTP so that the official client,
pycalrissian and kubectl can be tested without a cluster; ``cluster`` adds the controllers that
make pods and Jobs progress (Calrissian Jobs run with cwltool on this machine); ``fixtures``
gives each test its own running cluster. ``node`` is an executing kubelet (pods run in
bubblewrap sandboxes) with which the real Calrissian (``calrissian_venv``) runs Calrissian Jobs.
"""
