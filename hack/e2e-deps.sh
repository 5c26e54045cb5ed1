#!/usr/bin/env bash
# Installs the real GameLift clients the e2e test drives, from Debian's packages: the aws CLI and boto3
# (both speak AWS JSON 1.1 to GameLift). Does nothing when they are there.
set -euo pipefail
if [[ -x /usr/bin/aws ]] && /usr/bin/python3 -c 'import boto3' 2>/dev/null; then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "e2e-deps: need root to apt-get install awscli python3-boto3" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq awscli python3-boto3 >/dev/null
