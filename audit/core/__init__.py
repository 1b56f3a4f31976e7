"""The audit's data and rules: context, results, policy, declared options, bootstrap statistics."""
