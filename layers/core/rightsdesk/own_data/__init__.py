"""The operator's own data: requests the operator carries out itself, what it holds on a subject, exports."""
