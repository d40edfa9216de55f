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

output "calendar_push_url" {
  description = "Where Google pushes the calendars' changes (CALENDAR_PUSH_URL): watch_calendars opens the channels to it; nothing to set up in Google."
  value       = contains(keys(local.functions), "on_calendar_push") ? google_cloudfunctions2_function.function["on_calendar_push"].url : null
}

output "tasks_queue" {
  description = "The Cloud Tasks queue of both workers' tasks, meetings' and calendars' syncs (TASKS_QUEUE): `gcloud tasks list --queue=<its last part> --location=<region>` shows what waits or retries."
  value       = google_cloud_tasks_queue.sync.id
}

output "firestore_database" {
  description = "The Firestore database of the shared state (FIRESTORE_DATABASE): the calendars' sync tokens and channels; `terraform destroy` leaves it in place."
  value = {
    name     = google_firestore_database.state.name
    location = google_firestore_database.state.location_id
  }
}

output "secrets_to_fill" {
  description = "Secret containers to fill with `make secrets` (`make secrets ONLY=google-channel-token` for the channel token; `make authorize` for the Google OAuth ones)."
  value       = sort(keys(google_secret_manager_secret.secret))
}

output "service_accounts" {
  description = "The accounts the functions, the scheduler, the queue's tasks and the builds run as."
  value = {
    webhooks  = google_service_account.webhooks.email
    scenarios = google_service_account.scenarios.email
    jobs      = google_service_account.jobs.email
    sync      = google_service_account.sync.email
    push      = google_service_account.push.email
    scheduler = google_service_account.scheduler.email
    tasks     = google_service_account.tasks.email
    build     = google_service_account.build.email
  }
}
