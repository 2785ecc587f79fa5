//! Forecast tests over generated data.
