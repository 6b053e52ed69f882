# A product with no resources: variables in, outputs out. Launches in well under a second.
variable "name" {
  type        = string
  default     = "world"
  description = "Whom to greet."
}

variable "repeat" {
  type        = number
  default     = 1
  description = "How many times to greet (1-10)."

  validation {
    condition     = var.repeat >= 1 && var.repeat <= 10
    error_message = "The repeat value must be between 1 and 10."
  }
}

output "greeting" {
  description = "The greeting, repeated."
  value       = join(" ", [for i in range(var.repeat) : "Hello, ${var.name}!"])
}
