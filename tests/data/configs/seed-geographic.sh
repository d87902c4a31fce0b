# DISTRIBUTED_WORKERS.md, "Geographic Distribution"
WORKER_DEFINITIONS=(
    "us-east|feat/v1.1-api|api_TASKS.txt|API (US East)|remote:aws-us-east"
    "eu-west|feat/v1.1-api|api_TASKS.txt|API (EU West)|remote:aws-eu-west"
    "ap-south|feat/v1.1-api|api_TASKS.txt|API (AP South)|remote:aws-ap-south"
)
