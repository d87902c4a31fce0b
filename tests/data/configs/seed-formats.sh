# DISTRIBUTED_WORKERS.md: the "Then in Czarina" line (Option 1, an ssh_config alias) and
# the "Option 2: Direct Specification" line, as WORKER_DEFINITIONS elements.
WORKER_DEFINITIONS=(
    "ml|feat/v1.1-ml|ml_TASKS.txt|ML Training|remote:gpu-server"
    "ml2|feat/v1.1-ml|ml_TASKS.txt|ML Training|remote:ml-worker@gpu.example.com:2222"
)
