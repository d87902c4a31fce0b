# Least-privilege custom role for the czarina-fleet GCP driver (see docs/permissions.md).
# UNVALIDATED: written without a terraform binary; run `terraform validate` first.

terraform {
  required_providers {
    google = { source = "hashicorp/google", version = ">= 5.0" }
  }
}

variable "project" {
  type = string
}

variable "network" {
  type    = string
  default = "default"
}

variable "admin_cidr" {
  description = "where the controller connects from (SSH)"
  type        = string
}

provider "google" {
  project = var.project
}

resource "google_project_iam_custom_role" "czarina_fleet" {
  role_id     = "czarinaFleetController"
  title       = "czarina-fleet controller"
  description = "Launch, list, wait on and delete czarina-fleet Spot VMs"
  permissions = [
    # recorded API calls
    "compute.instances.create",
    "compute.instances.get",
    "compute.instances.list",
    "compute.instances.delete",
    "compute.zoneOperations.get",
    "compute.zoneOperations.list",
    # checked by instances.insert for what the VM uses
    "compute.disks.create",
    "compute.images.useReadOnly",
    "compute.subnetworks.use",
    "compute.subnetworks.useExternalIp",
    "compute.instances.setMetadata",
    "compute.instances.setLabels",
    "compute.instances.setTags",
  ]
}

resource "google_service_account" "czarina_fleet" {
  account_id   = "czarina-fleet"
  display_name = "czarina-fleet controller"
}

resource "google_project_iam_member" "czarina_fleet" {
  project = var.project
  role    = google_project_iam_custom_role.czarina_fleet.id
  member  = "serviceAccount:${google_service_account.czarina_fleet.email}"
}

# Public images live in other projects (debian-cloud, ubuntu-os-cloud): they grant
# compute.images.useReadOnly to all authenticated users already.

resource "google_compute_firewall" "czarina_ssh" {
  name          = "czarina-fleet-ssh"
  network       = var.network
  direction     = "INGRESS"
  source_ranges = [var.admin_cidr]
  target_tags   = ["czarina-ssh"] # the pool's options.network_tags

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}
