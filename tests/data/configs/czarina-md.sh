# The sketch in CZARINA.md (ORCHESTRATOR_DIR is never set: bash would expand it empty)
export PROJECT_ROOT="/path/to/project"
export PROMPTS_DIR="${ORCHESTRATOR_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}/prompts"
export WORKER_DEFINITIONS=(
    "engineer1|feat/v1.2-backend|engineer1_TASKS.txt|Backend Development"   # 4 fields
    "ml|feat/v1.1-ml|ml_TASKS.txt|ML Training|remote:gpu-server"            # 5th: location
)
export REMOTE_HOSTS=( "gpu-server:ml@gpu.example.com:2222:/mnt/projects" )  # name:user@host:port:path
export MIN_WORKERS=3 MAX_WORKERS=12 AUTO_SCALE=true
export WORKER_CLOUD_CONFIG=( "engineer1|aws-spot:t3.large:us-east-1" )
