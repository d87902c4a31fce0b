# DISTRIBUTED_WORKERS.md, "Cost Optimization"
WORKER_DEFINITIONS=(
    "architect|feat/v2.0-design|arch_TASKS.txt|Architecture|local"
    "backend|feat/v2.0-api|api_TASKS.txt|Backend|remote:cheap-spot-instance"
    "frontend|feat/v2.0-ui|ui_TASKS.txt|Frontend|remote:cheap-spot-instance"
    "ml|feat/v2.0-models|ml_TASKS.txt|ML Training|remote:gpu-spot-instance"
)
