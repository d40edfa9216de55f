output "function_urls" {
  description = "The URL of every deployed function."
  value       = { for name, function in google_cloudfunctions2_function.function : name => function.url }
}

output "bpium_webhooks" {
  description = "Управление → Вебхуки: one webhook per item, on the Meetings catalog, with the secret string stored in bpium-webhook-secret."
  value = [
    for name, event in local.webhook_events : {
      catalog        = var.bpium_meetings_catalog
      event          = event
      url            = google_cloudfunctions2_function.function[name].url
      secret_string  = "the value of the bpium-webhook-secret secret"
      tracked_fields = event == "record.updated" ? "all, or only the meeting's fields, never ${var.bpium_fields["event_id"]} (event id)${contains(keys(var.bpium_fields), "link") ? " nor ${var.bpium_fields["link"]} (link)" : ""}" : null
    } if contains(keys(local.functions), name)
  ]
}

output "bpium_web_requests" {
  description = "«Веб-запрос» settings of the scenario calls (README «Calling the functions from a scenario»)."
  value = {
    for name in ["list_events", "create_calendar"] : name => {
      method  = "POST"
      url     = google_cloudfunctions2_function.function[name].url
      format  = "Тело запроса, JSON"
      headers = { "X-Api-Key" = "the value of the api-key secret" }
    } if contains(keys(local.functions), name)
  }
}

output "tasks_queue" {
  description = "The Cloud Tasks queue of the webhooks' work (TASKS_QUEUE): `gcloud tasks list --queue=<its last part> --location=<region>` shows what waits or retries."
  value       = google_cloud_tasks_queue.sync.id
}

output "secrets_to_fill" {
  description = "Secret containers to fill with `make secrets` (and `make authorize` for the Google ones)."
  value       = sort(keys(google_secret_manager_secret.secret))
}

output "service_accounts" {
  description = "The accounts the functions, the scheduler, the queue's tasks and the builds run as."
  value = {
    webhooks  = google_service_account.webhooks.email
    scenarios = google_service_account.scenarios.email
    jobs      = google_service_account.jobs.email
    sync      = google_service_account.sync.email
    scheduler = google_service_account.scheduler.email
    tasks     = google_service_account.tasks.email
    build     = google_service_account.build.email
  }
}
