# DISTRIBUTED_WORKERS.md, "Auto-Scaling", "Spot Instance Integration" and
# "Kubernetes Integration", with the workers they name.
WORKER_DEFINITIONS=(
    "backend|feat/v2.0-api|api_TASKS.txt|Backend"
    "frontend|feat/v2.0-ui|ui_TASKS.txt|Frontend"
)

# Start with 3 workers, auto-add more if needed
MIN_WORKERS=3
MAX_WORKERS=12
AUTO_SCALE=true

# Czar spawns additional workers on idle capacity

# Use AWS spot instances for workers
WORKER_CLOUD_CONFIG=(
    "backend|aws-spot:t3.large:us-east-1"
    "frontend|aws-spot:t3.large:us-west-2"
)
