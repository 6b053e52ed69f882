# A static website of three files, written by the bundled sandbox provider into this
# provisioned product's sandbox directory: real resources to create, change and destroy.
terraform {
  required_providers {
    sandbox = {
      source  = "servicecatalog.local/demo/sandbox"
      version = "0.1.0"
    }
  }
}

provider "sandbox" {}

variable "title" {
  type        = string
  default     = "My site"
  description = "Page title."
}

variable "message" {
  type        = string
  default     = "Provisioned by servicecatalog."
  description = "Text of the home page."
}

variable "theme" {
  type        = string
  default     = "light"
  description = "Colour theme."
}

resource "sandbox_file" "index" {
  path    = "site/index.html"
  content = "<!doctype html><title>${var.title}</title><link rel=stylesheet href=style.css><h1>${var.title}</h1><p>${var.message}</p><a href=about.html>About</a>\n"
}

resource "sandbox_file" "style" {
  path    = "site/style.css"
  content = var.theme == "dark" ? "body { background: #111; color: #eee; }\n" : "body { background: #fff; color: #111; }\n"
}

resource "sandbox_file" "about" {
  path    = "site/about.html"
  content = "<!doctype html><title>About ${var.title}</title><p>Theme: ${var.theme}.</p>\n"
}

output "index_path" {
  description = "Path of the home page inside the sandbox."
  value       = sandbox_file.index.id
}

output "index_checksum" {
  description = "SHA-256 of the home page."
  value       = sandbox_file.index.checksum
}
