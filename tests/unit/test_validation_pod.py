"""Pod validation: the pod spec (containers, volumes, scheduling) and pod updates."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.apiserver_cases import (
    DELETE,
    assert_problems,
    load,
    mutate,
    problems,
    update_problems,
)

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "nginx:1.25",
                             "ports": [{"name": "http", "containerPort": 80}]}]},
}

# --- Kubernetes documentation examples: all valid ------------------------------------------

DOC_PODS = {
    "init-containers": """
apiVersion: v1
kind: Pod
metadata:
  name: myapp-pod
  labels:
    app.kubernetes.io/name: MyApp
spec:
  containers:
  - name: myapp-container
    image: busybox:1.28
    command: ['sh', '-c', 'echo The app is running! && sleep 3600']
  initContainers:
  - name: init-myservice
    image: busybox:1.28
    command: ['sh', '-c', "until nslookup myservice; do echo waiting for myservice; sleep 2; done"]
  - name: init-mydb
    image: busybox:1.28
    command: ['sh', '-c', "until nslookup mydb; do echo waiting for mydb; sleep 2; done"]
""",
    "liveness-exec": """
apiVersion: v1
kind: Pod
metadata:
  labels:
    test: liveness
  name: liveness-exec
spec:
  containers:
  - name: liveness
    image: registry.k8s.io/busybox
    args:
    - /bin/sh
    - -c
    - touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600
    livenessProbe:
      exec:
        command:
        - cat
        - /tmp/healthy
      initialDelaySeconds: 5
      periodSeconds: 5
""",
    "liveness-http": """
apiVersion: v1
kind: Pod
metadata:
  labels:
    test: liveness
  name: liveness-http
spec:
  containers:
  - name: liveness
    image: registry.k8s.io/e2e-test-images/agnhost:2.40
    args:
    - liveness
    livenessProbe:
      httpGet:
        path: /healthz
        port: 8080
        httpHeaders:
        - name: Custom-Header
          value: Awesome
      initialDelaySeconds: 3
      periodSeconds: 3
""",
    "goproxy-tcp": """
apiVersion: v1
kind: Pod
metadata:
  name: goproxy
  labels:
    app: goproxy
spec:
  containers:
  - name: goproxy
    image: registry.k8s.io/goproxy:0.1
    ports:
    - containerPort: 8080
    readinessProbe:
      tcpSocket:
        port: 8080
      initialDelaySeconds: 15
      periodSeconds: 10
    livenessProbe:
      tcpSocket:
        port: 8080
      initialDelaySeconds: 15
      periodSeconds: 10
""",
    "dapi-envars-fieldref": """
apiVersion: v1
kind: Pod
metadata:
  name: dapi-envars-fieldref
spec:
  containers:
    - name: test-container
      image: registry.k8s.io/busybox
      command: [ "sh", "-c"]
      args:
      - while true; do
          printenv MY_NODE_NAME MY_POD_NAME MY_POD_NAMESPACE;
          sleep 10;
        done;
      env:
        - name: MY_NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: MY_POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: MY_POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        - name: MY_POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        - name: MY_POD_SERVICE_ACCOUNT
          valueFrom:
            fieldRef:
              fieldPath: spec.serviceAccountName
        - name: MY_CPU_REQUEST
          valueFrom:
            resourceFieldRef:
              containerName: test-container
              resource: requests.cpu
              divisor: 1m
  restartPolicy: Never
""",
    "configmap-and-secret-env": """
apiVersion: v1
kind: Pod
metadata:
  name: configmap-demo-pod
spec:
  containers:
    - name: demo
      image: alpine
      command: ["sleep", "3600"]
      env:
        - name: PLAYER_INITIAL_LIVES
          valueFrom:
            configMapKeyRef:
              name: game-demo
              key: player_initial_lives
        - name: SECRET_USERNAME
          valueFrom:
            secretKeyRef:
              name: backend-user
              key: backend-username
      envFrom:
        - configMapRef:
            name: special-config
      volumeMounts:
      - name: config
        mountPath: "/config"
        readOnly: true
      - name: foo
        mountPath: "/etc/foo"
        readOnly: true
  volumes:
  - name: config
    configMap:
      name: game-demo
      items:
      - key: "game.properties"
        path: "game.properties"
      - key: "user-interface.properties"
        path: "user-interface.properties"
  - name: foo
    secret:
      secretName: mysecret
      defaultMode: 0400
""",
    "downward-api-volume": """
apiVersion: v1
kind: Pod
metadata:
  name: kubernetes-downwardapi-volume-example
  labels:
    zone: us-est-coast
    cluster: test-cluster1
  annotations:
    build: two
    builder: john-doe
spec:
  containers:
    - name: client-container
      image: registry.k8s.io/busybox
      command: ["sh", "-c", "cat /etc/podinfo/labels"]
      volumeMounts:
        - name: podinfo
          mountPath: /etc/podinfo
  volumes:
    - name: podinfo
      downwardAPI:
        items:
          - path: "labels"
            fieldRef:
              fieldPath: metadata.labels
          - path: "annotations"
            fieldRef:
              fieldPath: metadata.annotations
""",
    "node-affinity": """
apiVersion: v1
kind: Pod
metadata:
  name: with-node-affinity
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - key: topology.kubernetes.io/zone
            operator: In
            values:
            - antarctica-east1
            - antarctica-west1
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 1
        preference:
          matchExpressions:
          - key: another-node-label-key
            operator: In
            values:
            - another-node-label-value
  containers:
  - name: with-node-affinity
    image: registry.k8s.io/pause:2.0
""",
    "pod-affinity": """
apiVersion: v1
kind: Pod
metadata:
  name: with-pod-affinity
spec:
  affinity:
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchExpressions:
          - key: security
            operator: In
            values:
            - S1
        topologyKey: topology.kubernetes.io/zone
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          labelSelector:
            matchExpressions:
            - key: security
              operator: In
              values:
              - S2
          topologyKey: topology.kubernetes.io/zone
  containers:
  - name: with-pod-affinity
    image: registry.k8s.io/pause:2.0
""",
    "resources": """
apiVersion: v1
kind: Pod
metadata:
  name: frontend
spec:
  containers:
  - name: app
    image: images.my-company.example/app:v4
    resources:
      requests:
        memory: "64Mi"
        cpu: "250m"
      limits:
        memory: "128Mi"
        cpu: "500m"
  - name: log-aggregator
    image: images.my-company.example/log-aggregator:v6
    resources:
      requests:
        memory: "64Mi"
        cpu: "250m"
      limits:
        memory: "128Mi"
        cpu: "500m"
""",
    "tolerations": """
apiVersion: v1
kind: Pod
metadata:
  name: nginx
  labels:
    env: test
spec:
  containers:
  - name: nginx
    image: nginx
    imagePullPolicy: IfNotPresent
  tolerations:
  - key: "example-key"
    operator: "Exists"
    effect: "NoSchedule"
  - key: "node.kubernetes.io/unreachable"
    operator: "Exists"
    effect: "NoExecute"
    tolerationSeconds: 6000
""",
    "empty-dir": """
apiVersion: v1
kind: Pod
metadata:
  name: test-pd
spec:
  containers:
  - image: registry.k8s.io/test-webserver
    name: test-container
    volumeMounts:
    - mountPath: /cache
      name: cache-volume
  volumes:
  - name: cache-volume
    emptyDir:
      sizeLimit: 500Mi
""",
    "security-context": """
apiVersion: v1
kind: Pod
metadata:
  name: security-context-demo
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
    supplementalGroups: [4000]
  volumes:
  - name: sec-ctx-vol
    emptyDir: {}
  containers:
  - name: sec-ctx-demo
    image: busybox:1.28
    command: [ "sh", "-c", "sleep 1h" ]
    volumeMounts:
    - name: sec-ctx-vol
      mountPath: /data/demo
    securityContext:
      allowPrivilegeEscalation: false
""",
    "topology-spread": """
kind: Pod
apiVersion: v1
metadata:
  name: mypod
  labels:
    foo: bar
spec:
  topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: zone
    whenUnsatisfiable: DoNotSchedule
    labelSelector:
      matchLabels:
        foo: bar
  containers:
  - name: pause
    image: registry.k8s.io/pause:3.1
""",
    "lifecycle": """
apiVersion: v1
kind: Pod
metadata:
  name: lifecycle-demo
spec:
  containers:
  - name: lifecycle-demo-container
    image: nginx
    lifecycle:
      postStart:
        exec:
          command: ["/bin/sh", "-c", "echo Hello from the postStart handler > /usr/share/message"]
      preStop:
        exec:
          command: ["/bin/sh","-c","nginx -s quit; while killall -0 nginx; do sleep 1; done"]
""",
    "sidecar": """
apiVersion: v1
kind: Pod
metadata:
  name: app-with-sidecar
spec:
  initContainers:
  - name: logshipper
    image: alpine:latest
    restartPolicy: Always
    command: ['sh', '-c', 'tail -F /opt/logs.txt']
    readinessProbe:
      exec:
        command: ["true"]
    volumeMounts:
    - name: data
      mountPath: /opt
  containers:
  - name: myapp
    image: alpine:latest
    command: ['sh', '-c', 'while true; do echo "logging" >> /opt/logs.txt; sleep 1; done']
    volumeMounts:
    - name: data
      mountPath: /opt
  volumes:
  - name: data
    emptyDir: {}
""",
}


@pytest.mark.parametrize("name", sorted(DOC_PODS))
def test_documentation_pods_are_valid(name: str) -> None:
    assert problems("Pod", load(DOC_PODS[name])) == []


def test_base_pod_is_valid() -> None:
    assert problems("Pod", POD) == []


# --- invalid pods: (changes to POD, expected (path, message fragment) pairs) --------------

C0 = "spec.containers.0"
P0 = "spec.containers[0]"

INVALID: list[tuple[str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("no containers", [("spec.containers", [])], [("spec.containers", "Required value")]),
    ("no image", [(f"{C0}.image", DELETE)], [(f"{P0}.image", "Required value")]),
    ("image whitespace", [(f"{C0}.image", " nginx")],
     [(f"{P0}.image", "leading or trailing whitespace")]),
    ("container name", [(f"{C0}.name", "App_1")], [(f"{P0}.name", "RFC 1123 label")]),
    ("no container name", [(f"{C0}.name", DELETE)], [(f"{P0}.name", "Required value")]),
    ("duplicate across init and regular",
     [("spec.initContainers", [{"name": "app", "image": "busybox"}])],
     [(P0 + ".name", 'Duplicate value: "app"')]),
    ("pull policy", [(f"{C0}.imagePullPolicy", "Sometimes")],
     [(f"{P0}.imagePullPolicy", 'Unsupported value: "Sometimes"')]),
    ("container port zero", [(f"{C0}.ports.0.containerPort", 0)],
     [(f"{P0}.ports[0].containerPort", "Required value")]),
    ("container port too big", [(f"{C0}.ports.0.containerPort", 70000)],
     [(f"{P0}.ports[0].containerPort", "between 1 and 65535")]),
    ("host port too big", [(f"{C0}.ports.0.hostPort", 65536)],
     [(f"{P0}.ports[0].hostPort", "between 1 and 65535")]),
    ("port name not IANA", [(f"{C0}.ports.0.name", "web--http")],
     [(f"{P0}.ports[0].name", "two hyphens")]),
    ("duplicate port names", [(f"{C0}.ports.1", {"name": "http", "containerPort": 81})],
     [(f"{P0}.ports[1].name", 'Duplicate value: "http"')]),
    ("protocol", [(f"{C0}.ports.0.protocol", "ICMP")],
     [(f"{P0}.ports[0].protocol", 'supported values: "SCTP", "TCP", "UDP"')]),
    ("host port clash", [(f"{C0}.ports.0.hostPort", 8080),
                         ("spec.containers.1", {"name": "b", "image": "x", "ports": [
                             {"containerPort": 9090, "hostPort": 8080}]})],
     [("spec.containers[1].ports[0].hostPort", 'Duplicate value: "8080/TCP"')]),
    ("host network port mismatch", [("spec.hostNetwork", True), (f"{C0}.ports.0.hostPort", 81)],
     [(f"{P0}.ports[0].hostPort", "must match `containerPort`")]),
    ("env name", [(f"{C0}.env", [{"name": "A=B", "value": "x"}])],
     [(f"{P0}.env[0].name", "other than '='")]),
    ("env value and valueFrom", [(f"{C0}.env", [{"name": "A", "value": "x", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"}}}])],
     [(f"{P0}.env[0].valueFrom", "may not be specified when `value` is not empty")]),
    ("env empty valueFrom", [(f"{C0}.env", [{"name": "A", "valueFrom": {}}])],
     [(f"{P0}.env[0].valueFrom", "must specify one of")]),
    ("env two sources", [(f"{C0}.env", [{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"},
        "secretKeyRef": {"name": "s", "key": "k"}}}])],
     [(f"{P0}.env[0].valueFrom", "more than one field")]),
    ("env bad field path", [(f"{C0}.env", [{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "spec.hostname"}}}])],
     [(f"{P0}.env[0].valueFrom.fieldRef.fieldPath", 'Unsupported value: "spec.hostname"')]),
    ("env bad label subscript", [(f"{C0}.env", [{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.labels['-bad']"}}}])],
     [(f"{P0}.env[0].valueFrom.fieldRef.fieldPath", "name part")]),
    ("env key ref without key", [(f"{C0}.env", [{"name": "A", "valueFrom": {
        "configMapKeyRef": {"name": "cm"}}}])],
     [(f"{P0}.env[0].valueFrom.configMapKeyRef.key", "Required value")]),
    ("env resource divisor", [(f"{C0}.env", [{"name": "A", "valueFrom": {
        "resourceFieldRef": {"resource": "limits.cpu", "divisor": "2"}}}])],
     [(f"{P0}.env[0].valueFrom.resourceFieldRef.divisor", 'supported values: "1m", "1"')]),
    ("envFrom nothing", [(f"{C0}.envFrom", [{"prefix": "P_"}])],
     [(f"{P0}.envFrom[0]", "must specify one of: `configMapRef` or `secretRef`")]),
    ("bad quantity", [(f"{C0}.resources", {"limits": {"cpu": "lots"}})],
     [(f"{P0}.resources.limits[cpu]", 'Invalid value: "lots"'),
      (f"{P0}.resources.requests[cpu]", 'Invalid value: "lots"')]),
    ("negative memory", [(f"{C0}.resources", {"requests": {"memory": "-1Gi"}})],
     [(f"{P0}.resources.requests[memory]", "greater than or equal to 0")]),
    ("request above limit", [(f"{C0}.resources", {"requests": {"cpu": "2"},
                                                  "limits": {"cpu": "500m"}})],
     [(f"{P0}.resources.requests[cpu]", "must be less than or equal to cpu limit of 500m")]),
    ("unknown resource", [(f"{C0}.resources", {"requests": {"gpu": "1"}})],
     [(f"{P0}.resources.requests[gpu]", "must be a standard resource")]),
    ("extended resource without limit", [(f"{C0}.resources", {"requests": {
        "example.com/gpu": "1"}})],
     [(f"{P0}.resources.limits[example.com/gpu]", "cannot be overcommitted")]),
    ("mount of a missing volume", [(f"{C0}.volumeMounts", [{"name": "data", "mountPath": "/d"}])],
     [(f"{P0}.volumeMounts[0].name", 'Not found: "data"')]),
    ("relative mount path", [("spec.volumes", [{"name": "data", "emptyDir": {}}]),
                             (f"{C0}.volumeMounts", [{"name": "data", "mountPath": "d"}])],
     [(f"{P0}.volumeMounts[0].mountPath", "must be an absolute path")]),
    ("mount path twice", [("spec.volumes", [{"name": "data", "emptyDir": {}}]),
                          (f"{C0}.volumeMounts", [{"name": "data", "mountPath": "/d"},
                                                  {"name": "data", "mountPath": "/d"}])],
     [(f"{P0}.volumeMounts[1].mountPath", "must be unique")]),
    ("subPath escapes", [("spec.volumes", [{"name": "data", "emptyDir": {}}]),
                         (f"{C0}.volumeMounts", [{"name": "data", "mountPath": "/d",
                                                  "subPath": "../etc"}])],
     [(f"{P0}.volumeMounts[0].subPath", "must not contain '..'")]),
    ("volume name", [("spec.volumes", [{"name": "Data", "emptyDir": {}}])],
     [("spec.volumes[0].name", "RFC 1123 label")]),
    ("duplicate volumes", [("spec.volumes", [{"name": "d", "emptyDir": {}},
                                             {"name": "d", "emptyDir": {}}])],
     [("spec.volumes[1].name", 'Duplicate value: "d"')]),
    ("two volume sources", [("spec.volumes", [{"name": "d", "emptyDir": {},
                                               "hostPath": {"path": "/x"}}])],
     [("spec.volumes[0].emptyDir", "may not specify more than 1 volume type")]),
    ("configMap volume without name", [("spec.volumes", [{"name": "d", "configMap": {}}])],
     [("spec.volumes[0].configMap.name", "Required value")]),
    ("bad mode", [("spec.volumes", [{"name": "d", "secret": {"secretName": "s",
                                                             "defaultMode": 1024}}])],
     [("spec.volumes[0].secret.defaultMode", "between 0 and 0777")]),
    ("item path escapes", [("spec.volumes", [{"name": "d", "configMap": {
        "name": "c", "items": [{"key": "k", "path": "../k"}]}}])],
     [("spec.volumes[0].configMap.items[0].path", "must not contain '..'")]),
    ("hostPath type", [("spec.volumes", [{"name": "d", "hostPath": {"path": "/x",
                                                                    "type": "Dir"}}])],
     [("spec.volumes[0].hostPath.type", 'Unsupported value: "Dir"')]),
    ("probe without handler", [(f"{C0}.livenessProbe", {"periodSeconds": 5})],
     [(f"{P0}.livenessProbe", "must specify a handler type")]),
    ("probe two handlers", [(f"{C0}.readinessProbe", {"exec": {"command": ["true"]},
                                                      "tcpSocket": {"port": 80}})],
     [(f"{P0}.readinessProbe.tcpSocket", "may not specify more than 1 handler type")]),
    ("probe bad port", [(f"{C0}.readinessProbe", {"httpGet": {"port": 0}})],
     [(f"{P0}.readinessProbe.httpGet.port", "between 1 and 65535")]),
    ("probe bad named port", [(f"{C0}.readinessProbe", {"tcpSocket": {"port": "Web"}})],
     [(f"{P0}.readinessProbe.tcpSocket.port", "lower-case")]),
    ("probe negative threshold", [(f"{C0}.readinessProbe", {"exec": {"command": ["true"]},
                                                            "failureThreshold": -1})],
     [(f"{P0}.readinessProbe.failureThreshold", "greater than or equal to 1")]),
    ("liveness success threshold", [(f"{C0}.livenessProbe", {"exec": {"command": ["true"]},
                                                             "successThreshold": 2})],
     [(f"{P0}.livenessProbe.successThreshold", "must be 1")]),
    ("probe on init container", [("spec.initContainers", [{
        "name": "init", "image": "busybox", "livenessProbe": {"exec": {"command": ["true"]}}}])],
     [("spec.initContainers[0].livenessProbe", "may not be set for init containers")]),
    ("restartPolicy on regular container", [(f"{C0}.restartPolicy", "Always")],
     [(f"{P0}.restartPolicy", "may not be set for non-init containers")]),
    ("exec without command", [(f"{C0}.lifecycle", {"preStop": {"exec": {}}})],
     [(f"{P0}.lifecycle.preStop.exec.command", "Required value")]),
    ("restart policy", [("spec.restartPolicy", "Sometimes")],
     [("spec.restartPolicy", 'supported values: "Always", "OnFailure", "Never"')]),
    ("dns policy", [("spec.dnsPolicy", "Google")], [("spec.dnsPolicy", "Unsupported value")]),
    ("dns none without config", [("spec.dnsPolicy", "None")],
     [("spec.dnsConfig", "must provide `dnsConfig`")]),
    ("dns nameserver", [("spec.dnsConfig", {"nameservers": ["1.1.1"]})],
     [("spec.dnsConfig.nameservers[0]", "valid IP address")]),
    ("negative grace period", [("spec.terminationGracePeriodSeconds", -1)],
     [("spec.terminationGracePeriodSeconds", "greater than or equal to 0")]),
    ("zero deadline", [("spec.activeDeadlineSeconds", 0)],
     [("spec.activeDeadlineSeconds", "between 1 and 2147483647")]),
    ("hostname", [("spec.hostname", "web.1")], [("spec.hostname", "must not contain dots")]),
    ("subdomain", [("spec.subdomain", "Svc")], [("spec.subdomain", "RFC 1123 label")]),
    ("node selector", [("spec.nodeSelector", {"disk type": "ssd"})],
     [("spec.nodeSelector", 'Invalid value: "disk type"')]),
    ("service account name", [("spec.serviceAccountName", "Robot")],
     [("spec.serviceAccountName", "RFC 1123 subdomain")]),
    ("toleration exists with value", [("spec.tolerations", [
        {"key": "k", "operator": "Exists", "value": "v"}])],
     [("spec.tolerations[0].value", "value must be empty when `operator` is 'Exists'")]),
    ("toleration empty key", [("spec.tolerations", [{"operator": "Equal", "value": "v"}])],
     [("spec.tolerations[0].operator", "operator must be Exists when `key` is empty")]),
    ("toleration effect", [("spec.tolerations", [{"key": "k", "effect": "NoRun"}])],
     [("spec.tolerations[0].effect", 'Unsupported value: "NoRun"')]),
    ("toleration seconds", [("spec.tolerations", [{"key": "k", "effect": "NoSchedule",
                                                   "tolerationSeconds": 10}])],
     [("spec.tolerations[0].effect", "effect must be 'NoExecute'")]),
    ("toleration operator", [("spec.tolerations", [{"key": "k", "operator": "In"}])],
     [("spec.tolerations[0].operator", 'supported values: "Equal", "Exists"')]),
    ("node affinity without terms", [("spec.affinity", {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}})],
     [("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
       ".nodeSelectorTerms", "at least one node selector term")]),
    ("node affinity operator", [("spec.affinity", {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "Near", "values": ["a"]}]}]}}})],
     [("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
       ".nodeSelectorTerms[0].matchExpressions[0].operator", 'Unsupported value: "Near"')]),
    ("node affinity In without values", [("spec.affinity", {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In"}]}]}}})],
     [("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
       ".nodeSelectorTerms[0].matchExpressions[0].values", "must be specified")]),
    ("preferred weight", [("spec.affinity", {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 101, "preference": {}}]}})],
     [("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
       "in the range 1-100")]),
    ("pod affinity without topology key", [("spec.affinity", {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}}]}})],
     [("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
       ".topologyKey", "Required value")]),
    ("pod anti-affinity selector", [("spec.affinity", {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone",
            "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Exists",
                                                    "values": ["x"]}]}}]}})],
     [("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
       ".labelSelector.matchExpressions[0].values", "")]),
    ("topology spread", [("spec.topologySpreadConstraints", [
        {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "Sometimes"}])],
     [("spec.topologySpreadConstraints[0].maxSkew", "greater than zero"),
      ("spec.topologySpreadConstraints[0].whenUnsatisfiable", "Unsupported value")]),
    ("run as user", [("spec.securityContext", {"runAsUser": -1})],
     [("spec.securityContext.runAsUser", "between 0 and 2147483647")]),
    ("privileged without escalation", [(f"{C0}.securityContext", {
        "privileged": True, "allowPrivilegeEscalation": False})],
     [(f"{P0}.securityContext.allowPrivilegeEscalation", "cannot set")]),
    ("seccomp localhost without profile", [("spec.securityContext", {
        "seccompProfile": {"type": "Localhost"}})],
     [("spec.securityContext.seccompProfile.localhostProfile", "Required value")]),
    ("sysctl name", [("spec.securityContext", {"sysctls": [{"name": "Net.Core", "value": "1"}]})],
     [("spec.securityContext.sysctls[0].name", "sysctl name")]),
    ("share process namespace with host pid", [("spec.shareProcessNamespace", True),
                                              ("spec.hostPID", True)],
     [("spec.shareProcessNamespace", "cannot both be enabled")]),
    ("host alias", [("spec.hostAliases", [{"ip": "10.0.0.300", "hostnames": ["a"]}])],
     [("spec.hostAliases[0].ip", "valid IP address")]),
    ("scheduling gates with node", [("spec.nodeName", "n1"),
                                    ("spec.schedulingGates", [{"name": "example.com/gate"}])],
     [("spec.nodeName", "cannot be set until all schedulingGates have been cleared")]),
]


@pytest.mark.parametrize(("changes", "expected"), [(c, e) for _, c, e in INVALID],
                         ids=[name for name, _, _ in INVALID])
def test_invalid_pods(changes: list[tuple[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert_problems(problems("Pod", mutate(POD, *changes)), expected)


def test_every_problem_is_reported() -> None:
    doc = mutate(POD, (f"{C0}.image", DELETE), (f"{C0}.ports.0.containerPort", 0),
                 ("spec.restartPolicy", "Sometimes"), ("metadata.name", "Web"))
    assert_problems(problems("Pod", doc), [
        ("metadata.name", "RFC 1123 subdomain"), (f"{P0}.image", "Required value"),
        (f"{P0}.ports[0].containerPort", "Required value"),
        ("spec.restartPolicy", "Unsupported value")])


# --- updates -------------------------------------------------------------------------------

BOUND = mutate(POD, ("spec.nodeName", "node-1"), ("spec.activeDeadlineSeconds", 300),
               ("spec.tolerations", [{"key": "k", "operator": "Exists", "effect": "NoExecute",
                                      "tolerationSeconds": 60}]))

UPDATES: list[tuple[str, list[tuple[str, Any]], list[tuple[str, str]]]] = [
    ("new image", [(f"{C0}.image", "nginx:1.26")], []),
    ("labels", [("metadata.labels.tier", "front")], []),
    ("shorter deadline", [("spec.activeDeadlineSeconds", 100)], []),
    ("added toleration", [("spec.tolerations.1", {"key": "other", "operator": "Exists"})], []),
    ("shorter toleration", [("spec.tolerations.0.tolerationSeconds", 30)], []),
    ("grace period", [("spec.terminationGracePeriodSeconds", 5)], []),
    ("longer deadline", [("spec.activeDeadlineSeconds", 600)],
     [("spec.activeDeadlineSeconds", "less than or equal to previous value")]),
    ("removed deadline", [("spec.activeDeadlineSeconds", DELETE)],
     [("spec.activeDeadlineSeconds", "must not update from a positive integer to nil")]),
    ("removed toleration", [("spec.tolerations", [])],
     [("spec.tolerations", "existing toleration can not be modified")]),
    ("port change", [(f"{C0}.ports.0.containerPort", 8080)],
     [("spec", "pod updates may not change fields other than")]),
    ("node change", [("spec.nodeName", "node-2")], [("spec", "changed: spec.nodeName")]),
    ("added container", [("spec.containers.1", {"name": "b", "image": "busybox"})],
     [("spec", "changed: spec.containers")]),
    ("env change", [(f"{C0}.env", [{"name": "A", "value": "1"}])],
     [("spec", "changed: spec.containers[0].env")]),
]


@pytest.mark.parametrize(("changes", "expected"), [(c, e) for _, c, e in UPDATES],
                         ids=[name for name, _, _ in UPDATES])
def test_pod_updates(changes: list[tuple[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert_problems(update_problems("Pod", BOUND, mutate(BOUND, *changes)), expected)


def test_unchanged_pod_update_is_valid() -> None:
    assert update_problems("Pod", BOUND, BOUND) == []
