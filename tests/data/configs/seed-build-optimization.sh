# DISTRIBUTED_WORKERS.md, "Build Optimization" (remote names come from ssh_config)
WORKER_DEFINITIONS=(
    "frontend|feat/v1.1-ui|ui_TASKS.txt|UI Development|remote:build-server-1"
    "backend|feat/v1.1-api|api_TASKS.txt|API Development|remote:build-server-2"
    "ml-training|feat/v1.1-ml|ml_TASKS.txt|ML Model Training|remote:gpu-server"
    "docs|feat/v1.1-docs|docs_TASKS.txt|Documentation|local"
)
