"""The dashboard: ``fastseg dashboard``, a Streamlit app over aggregates fastseg computes once."""
