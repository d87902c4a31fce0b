#!/usr/bin/env bash
# A stand-in for an AI coding agent, for demos and tests on machines with no agent
# installed. It reads tasks typed into its tmux pane (one per line) and, every few
# seconds, makes a commit on its branch, as a busy agent would.
interval=${STAND_IN_INTERVAL:-3}
n=0
echo "stand-in agent ready in $(pwd)"
while :; do
  if read -r -t "$interval" line && [ -n "$line" ]; then
    printf '%s\n' "$line" >> TASKS_RECEIVED.txt
    echo "task: $line"
  fi
  n=$((n + 1))
  echo "step $n $(date -u +%H:%M:%S)" >> progress.log
  git add progress.log TASKS_RECEIVED.txt 2>/dev/null
  git -c user.name=stand-in-agent -c user.email=agent@czarina.invalid \
      commit -q -m "stand-in agent: step $n" >/dev/null 2>&1 || true
done
