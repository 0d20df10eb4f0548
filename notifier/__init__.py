"""The notifier: tells people where they already look that a sync was asked for, failed or worked.

Every outcome is already an event on Kafka, so notification is one more consumer group
(`gitops-notifiers` on `<prefix>.sync-events` and `<prefix>.sync-requests`): scaled and
restarted on its own, so a slow chat API can delay a message but never a sync. Rules
(`notifications:` in the configuration) pick the events; providers turn each into one HTTP
request (a commit status on GitHub, GitLab, Gitea or Bitbucket, a Slack or Teams message,
or the CloudEvent itself for any webhook); delivery retries what may pass later and gives up
on what cannot, publishing `gitops.notification.failed` when it does.
"""
