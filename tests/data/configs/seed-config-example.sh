# config.sh (v2.1+)

# Define remote hosts
export REMOTE_HOSTS=(
    "build-server-1:builder@10.0.1.50:22:/home/builder/projects"
    "build-server-2:builder@10.0.1.51:22:/home/builder/projects"
    "gpu-server:ml@gpu.example.com:2222:/mnt/projects"
)

# Worker definitions with remotes
export WORKER_DEFINITIONS=(
    # Local workers
    "architect|feat/v2.0-design|arch_TASKS.txt|Architecture|local"
    "docs|feat/v2.0-docs|docs_TASKS.txt|Documentation|local"

    # Remote workers
    "backend|feat/v2.0-api|api_TASKS.txt|Backend API|remote:build-server-1"
    "frontend|feat/v2.0-ui|ui_TASKS.txt|Frontend UI|remote:build-server-2"
    "ml|feat/v2.0-models|ml_TASKS.txt|ML Training|remote:gpu-server"

    # Auto-assign (Czar chooses based on load)
    "qa|feat/v2.0-testing|qa_TASKS.txt|Testing|auto"
)
