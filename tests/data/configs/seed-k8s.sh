# DISTRIBUTED_WORKERS.md, "Kubernetes Integration"
WORKER_DEFINITIONS=(
    "backend|feat/v2.0-api|api_TASKS.txt|Backend"
    "frontend|feat/v2.0-ui|ui_TASKS.txt|Frontend"
)
# Deploy workers as K8s pods
WORKER_K8S_CONFIG=(
    "backend|k8s:build-worker:backend-pod"
    "frontend|k8s:build-worker:frontend-pod"
)
