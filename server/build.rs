// The migrations in ../sql are embedded at compile time (refinery's
// embed_migrations!): a new or changed file there must rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=../sql");
}
