# Least-privilege custom role for the czarina-fleet GCP driver (see docs/permissions.md).
# Checked in tests/test_terraform_examples.py (python-hcl2, checkov; see the README).

terraform {
  required_providers {
    google = { source = "hashicorp/google", version = ">= 5.0" }
  }
}

variable "project" {
  type = string
}

variable "region" {
  description = "region of the fleet's subnetwork (the pool's zones must be in it)"
  type        = string
}

variable "subnet_cidr" {
  type    = string
  default = "10.240.0.0/20"
}

variable "admin_cidr" {
  description = "where the controller connects from (SSH)"
  type        = string
  validation {
    condition     = can(cidrhost(var.admin_cidr, 0)) && !contains(["0.0.0.0/0", "::/0"], var.admin_cidr)
    error_message = "admin_cidr must be the controller's address range (e.g. 198.51.100.7/32), not the whole internet."
  }
}

variable "vm_name_prefix" {
  description = "the driver names every VM (and its boot disk) cz-<pool>-<host>-<hash>"
  type        = string
  default     = "cz-"
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
    # czarina doctor (read-only checks of zones, machine types and the image)
    "compute.zones.get",
    "compute.machineTypes.get",
    "compute.images.get",
    "compute.images.getFromFamily",
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

# The role holds instances.setMetadata and delete: unconditioned, whoever has the
# controller's credential could add ssh-keys or a startup script to ANY VM of the
# project. The condition limits every permission on an instance or a disk to the
# fleet's own (by name: the driver's VM names start with vm_name_prefix); other
# resources (zones, operations, subnetworks, images) are unaffected. Stronger still:
# give the fleet a project of its own (docs/permissions.md).
resource "google_project_iam_member" "czarina_fleet" {
  project = var.project
  role    = google_project_iam_custom_role.czarina_fleet.id
  member  = "serviceAccount:${google_service_account.czarina_fleet.email}"

  condition {
    title       = "czarina-fleet VMs only"
    description = "instances and disks named ${var.vm_name_prefix}*"
    expression  = <<-CEL
      (resource.type != "compute.googleapis.com/Instance" ||
       resource.name.extract("/instances/{name}").startsWith("${var.vm_name_prefix}")) &&
      (resource.type != "compute.googleapis.com/Disk" ||
       resource.name.extract("/disks/{name}").startsWith("${var.vm_name_prefix}"))
    CEL
  }
}

# Public images live in other projects (debian-cloud, ubuntu-os-cloud): they grant
# compute.images.useReadOnly to all authenticated users already.

# A network of the fleet's own: the project's `default` network carries GCP's
# default-allow-ssh rule (0.0.0.0/0), which would make admin_cidr restrict nothing.
# A new VPC has no ingress rule but the one below. Set the pool's options from the
# `pool_options` output.
resource "google_compute_network" "czarina" {
  name                    = "czarina-fleet"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "czarina" {
  # checkov:skip=CKV_GCP_26:flow logs are billed logging, not needed for the fleet to work; enable them if you audit traffic
  name                     = "czarina-fleet"
  network                  = google_compute_network.czarina.id
  region                   = var.region
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true # Google APIs without a public route (checkov CKV_GCP_74)
}

resource "google_compute_firewall" "czarina_ssh" {
  name          = "czarina-fleet-ssh"
  network       = google_compute_network.czarina.name
  direction     = "INGRESS"
  source_ranges = [var.admin_cidr]
  target_tags   = ["czarina-ssh"] # the pool's options.network_tags

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }
}

output "pool_options" {
  description = "the GCP pool's options for this network"
  value = {
    network      = google_compute_network.czarina.self_link
    subnetwork   = google_compute_subnetwork.czarina.self_link
    network_tags = ["czarina-ssh"]
  }
}
