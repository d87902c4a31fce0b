# Least-privilege IAM policy for the czarina-fleet AWS driver (see docs/permissions.md).
# Checked in tests/test_terraform_examples.py (python-hcl2, checkov; see the README).

terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "fleet" {
  description = "the fleet name (the czarina-fleet tag value)"
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "admin_cidr" {
  description = "where the controller connects from (SSH)"
  type        = string
  validation {
    condition     = can(cidrhost(var.admin_cidr, 0)) && !contains(["0.0.0.0/0", "::/0"], var.admin_cidr)
    error_message = "admin_cidr must be the controller's address range (e.g. 198.51.100.7/32), not the whole internet."
  }
}

provider "aws" {
  region = var.region
}

data "aws_iam_policy_document" "czarina_fleet" {
  # Read-only calls: EC2 Describe* and the Price List API have no resource-level permissions.
  statement {
    sid = "Describe"
    actions = [
      "ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeSpotPriceHistory",
      "pricing:GetProducts",
      "ec2:DescribeAvailabilityZones", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeImages",
      "ec2:DescribeVolumes", "ec2:DescribeNetworkInterfaces",
    ]
    resources = ["*"]
  }

  # RunInstances: the instance and its volume must carry this fleet's tag ...
  statement {
    sid       = "RunTaggedInstances"
    actions   = ["ec2:RunInstances"]
    resources = ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/czarina-fleet"
      values   = [var.fleet]
    }
  }

  # ... and may use the network, image and key resources it names.
  statement {
    sid     = "RunInstancesResources"
    actions = ["ec2:RunInstances"]
    resources = [
      "arn:aws:ec2:*:*:subnet/*",
      "arn:aws:ec2:*:*:security-group/*",
      "arn:aws:ec2:*:*:network-interface/*",
      "arn:aws:ec2:*:*:key-pair/*",
      "arn:aws:ec2:*::image/*",
      "arn:aws:ec2:*:*:spot-instances-request/*",
    ]
  }

  # Tags may only be written as part of RunInstances (tag-on-create).
  statement {
    sid     = "TagOnCreate"
    actions = ["ec2:CreateTags"]
    resources = [
      "arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*",
      "arn:aws:ec2:*:*:network-interface/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances"]
    }
  }

  # Only this fleet's instances can be terminated.
  statement {
    sid       = "TerminateOwn"
    actions   = ["ec2:TerminateInstances"]
    resources = ["arn:aws:ec2:*:*:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/czarina-fleet"
      values   = [var.fleet]
    }
  }

  # The sweep deletes only this fleet's volumes and interfaces that outlived their host.
  statement {
    sid       = "DeleteOwnLeftovers"
    actions   = ["ec2:DeleteVolume", "ec2:DeleteNetworkInterface"]
    resources = ["arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:network-interface/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/czarina-fleet"
      values   = [var.fleet]
    }
  }

  # The interruption queue (below): read, then delete what was acted upon, or let a
  # message about another pool's instance go back to the queue.
  statement {
    sid = "InterruptionQueue"
    actions = [
      "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [aws_sqs_queue.interruptions.arn]
  }

  # First spot launch in an account creates the Spot service-linked role.
  statement {
    sid       = "SpotServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:aws:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["spot.amazonaws.com"]
    }
  }
}

# Interruption notices the way Karpenter takes them: EventBridge rules route EC2's own
# events to one queue; the controller polls it (pool option interruption_queue).
resource "aws_sqs_queue" "interruptions" {
  name                      = "czarina-fleet-${var.fleet}-interruptions"
  message_retention_seconds = 300 # a notice older than the spot warning's 2 min is moot
  sqs_managed_sse_enabled   = true
  tags                      = { "czarina-fleet" = var.fleet }
}

data "aws_iam_policy_document" "interruptions_queue" {
  statement {
    sid       = "EventBridgeSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.interruptions.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "sqs.amazonaws.com"]
    }
  }
}

resource "aws_sqs_queue_policy" "interruptions" {
  queue_url = aws_sqs_queue.interruptions.id
  policy    = data.aws_iam_policy_document.interruptions_queue.json
}

locals {
  interruption_rules = {
    spot-interruption = {
      description   = "EC2 spot interruption warnings (2 minutes ahead)"
      event_pattern = jsonencode({
        source      = ["aws.ec2"],
        detail-type = ["EC2 Spot Instance Interruption Warning"],
      })
    }
    rebalance = {
      description   = "EC2 rebalance recommendations (elevated risk)"
      event_pattern = jsonencode({
        source      = ["aws.ec2"],
        detail-type = ["EC2 Instance Rebalance Recommendation"],
      })
    }
    state-change = {
      description   = "EC2 instances stopping or terminated"
      event_pattern = jsonencode({
        source      = ["aws.ec2"],
        detail-type = ["EC2 Instance State-change Notification"],
      })
    }
    scheduled-change = {
      description   = "AWS Health scheduled changes to EC2 instances"
      event_pattern = jsonencode({
        source      = ["aws.health"],
        detail-type = ["AWS Health Event"],
      })
    }
  }
}

resource "aws_cloudwatch_event_rule" "interruptions" {
  for_each      = local.interruption_rules
  name          = "czarina-fleet-${var.fleet}-${each.key}"
  description   = each.value.description
  event_pattern = each.value.event_pattern
  tags          = { "czarina-fleet" = var.fleet }
}

resource "aws_cloudwatch_event_target" "interruptions" {
  for_each = aws_cloudwatch_event_rule.interruptions
  rule     = each.value.name
  arn      = aws_sqs_queue.interruptions.arn
}

resource "aws_iam_policy" "czarina_fleet" {
  name        = "czarina-fleet-${var.fleet}"
  description = "czarina-fleet controller: launch, list and terminate its own spot instances"
  policy      = data.aws_iam_policy_document.czarina_fleet.json
}

# SSH from the controller only; all egress (package installs, git clone).
resource "aws_security_group" "czarina_hosts" {
  # checkov:skip=CKV_AWS_382:workers reach package mirrors, git remotes and model APIs on any port
  # checkov:skip=CKV2_AWS_5:the driver attaches it at launch (the pool's options.security_group_ids)
  name        = "czarina-fleet-${var.fleet}"
  description = "czarina-fleet worker hosts"
  vpc_id      = var.vpc_id

  ingress {
    description = "SSH from the controller"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.admin_cidr]
  }

  egress {
    description = "all outbound (package installs, git, model APIs)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = { "czarina-fleet" = var.fleet }
}

output "policy_arn" {
  value = aws_iam_policy.czarina_fleet.arn
}

output "interruption_queue" {
  description = "put this in the pool's options.interruption_queue"
  value       = aws_sqs_queue.interruptions.name
}

output "security_group_id" {
  description = "put this in the pool's options.security_group_ids"
  value       = aws_security_group.czarina_hosts.id
}
