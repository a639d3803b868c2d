"""The reviewer dashboard (Streamlit). It renders saved runs and computes nothing new."""
