//! Tests across modules: hostile input for every parser and writer.

mod hostile_input;
