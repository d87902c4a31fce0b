# Least-privilege custom role for the czarina-fleet Azure driver (see docs/permissions.md).
# Checked in tests/test_terraform_examples.py (python-hcl2, checkov; see the README).

terraform {
  required_providers {
    azurerm = { source = "hashicorp/azurerm", version = ">= 3.0" }
  }
}

variable "location" {
  type    = string
  default = "eastus"
}

variable "resource_group" {
  type    = string
  default = "czarina-fleet"
}

variable "controller_principal_id" {
  description = "object id of the identity the controller runs as"
  type        = string
}

variable "admin_cidr" {
  description = "where the controller connects from (SSH)"
  type        = string
  validation {
    condition     = can(cidrhost(var.admin_cidr, 0)) && !contains(["0.0.0.0/0", "::/0"], var.admin_cidr)
    error_message = "admin_cidr must be the controller's address range (e.g. 198.51.100.7/32), not the whole internet."
  }
}

provider "azurerm" {
  features {}
}

resource "azurerm_resource_group" "fleet" {
  name     = var.resource_group
  location = var.location
}

resource "azurerm_role_definition" "czarina_fleet" {
  name        = "czarina-fleet controller"
  scope       = azurerm_resource_group.fleet.id
  description = "Create, list and delete czarina-fleet Spot VMs with their NIC and public IP"

  permissions {
    actions = [
      # recorded ARM operations
      "Microsoft.Compute/virtualMachines/read",
      "Microsoft.Compute/virtualMachines/write",
      "Microsoft.Compute/virtualMachines/delete",
      "Microsoft.Compute/disks/read",
      "Microsoft.Compute/disks/delete",
      "Microsoft.Network/publicIPAddresses/read",
      "Microsoft.Network/publicIPAddresses/write",
      "Microsoft.Network/publicIPAddresses/delete",
      "Microsoft.Network/networkInterfaces/read",
      "Microsoft.Network/networkInterfaces/write",
      "Microsoft.Network/networkInterfaces/delete",
      "Microsoft.Network/locations/operations/read",
      "Microsoft.Network/locations/operationResults/read",
      "Microsoft.Compute/locations/operations/read",
      "Microsoft.Compute/locations/vmSizes/read",
      # checked by those calls for what they attach
      "Microsoft.Network/virtualNetworks/subnets/join/action",
      "Microsoft.Network/publicIPAddresses/join/action",
      "Microsoft.Network/networkInterfaces/join/action",
      "Microsoft.Network/networkSecurityGroups/join/action",
      "Microsoft.Compute/disks/write",
    ]
    not_actions = []
  }

  assignable_scopes = [azurerm_resource_group.fleet.id]
}

resource "azurerm_role_assignment" "czarina_fleet" {
  scope              = azurerm_resource_group.fleet.id
  role_definition_id = azurerm_role_definition.czarina_fleet.role_definition_resource_id
  principal_id       = var.controller_principal_id
}

# One VNet and subnet per location the pool lists (a VNet is regional).
resource "azurerm_virtual_network" "fleet" {
  name                = "czarina-fleet-${var.location}"
  location            = var.location
  resource_group_name = azurerm_resource_group.fleet.name
  address_space       = ["10.42.0.0/16"]
}

resource "azurerm_subnet" "workers" {
  name                 = "workers"
  resource_group_name  = azurerm_resource_group.fleet.name
  virtual_network_name = azurerm_virtual_network.fleet.name
  address_prefixes     = ["10.42.1.0/24"]
}

resource "azurerm_network_security_group" "ssh" {
  name                = "czarina-fleet-ssh"
  location            = var.location
  resource_group_name = azurerm_resource_group.fleet.name

  security_rule {
    name                       = "ssh-from-controller"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = var.admin_cidr
    destination_address_prefix = "*"
  }
}

# Attached to the subnet, so every VM on it is reachable over SSH from the controller
# only, whether or not its NIC also names the NSG (options.nsg_id).
resource "azurerm_subnet_network_security_group_association" "workers" {
  subnet_id                 = azurerm_subnet.workers.id
  network_security_group_id = azurerm_network_security_group.ssh.id
}

output "subnet_id" {
  description = "the pool's options.subnet_ids.<location>"
  value       = azurerm_subnet.workers.id
}

output "nsg_id" {
  description = "the pool's options.nsg_id"
  value       = azurerm_network_security_group.ssh.id
}
