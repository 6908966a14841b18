//! The method catalogue comes from the contract: every RPC declares who may
//! call it in `proto/` (`option (theatre.v1.access)`), the catalogue the
//! server enforces is exactly that, and an RPC without a rule fails the build.
#[allow(dead_code)] // render() is build.rs's
#[path = "../../build/catalogue.rs"]
mod catalogue;

use prost::Message;
use prost_reflect::DescriptorPool;
use theatre::methods::{Access, METHODS};

const CONTRACT: &[&str] = &[
    "theatre/v1/auth.proto",
    "theatre/v1/catalog.proto",
    "theatre/v1/booking.proto",
];

fn compile(includes: &[&std::path::Path], files: &[&str]) -> DescriptorPool {
    let mut compiler = protox::Compiler::new(includes).expect("include paths");
    compiler.open_files(files).expect("the protos compile");
    compiler.descriptor_pool()
}

#[test]
fn the_served_catalogue_is_what_the_contract_declares() {
    let declared =
        catalogue::catalogue(&compile(&["proto".as_ref()], CONTRACT)).expect("every RPC declares");
    let served: Vec<(String, String)> = METHODS
        .iter()
        .map(|m| (m.path.to_owned(), format!("{:?}", m.access)))
        .collect();
    let expected: Vec<(String, String)> = declared
        .iter()
        .map(|e| (format!("/{}/{}", e.service, e.name), e.access.to_owned()))
        .collect();
    assert_eq!(served, expected);

    // Every method of the descriptor set that reflection serves is in it.
    let fds = prost_types::FileDescriptorSet::decode(theatre::proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = 0;
    for file in fds.file.iter().filter(|f| f.package() == "theatre.v1") {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/theatre.v1.{}/{}", service.name(), method.name());
                assert!(
                    theatre::methods::find(&path).is_some(),
                    "{path} is not served"
                );
                rpcs += 1;
            }
        }
    }
    assert_eq!(rpcs, METHODS.len());

    let rule = |path: &str| theatre::methods::find(path).unwrap().access;
    assert_eq!(rule("/theatre.v1.AuthService/SignUp"), Access::Public);
    assert_eq!(rule("/theatre.v1.CatalogService/CreateShow"), Access::Admin);
    assert_eq!(
        rule("/theatre.v1.BookingService/CreateBooking"),
        Access::User
    );
}

#[test]
fn an_rpc_without_an_access_rule_fails_the_build() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("extra")).unwrap();
    std::fs::write(
        dir.path().join("extra/extra.proto"),
        r#"syntax = "proto3";
package theatre.v1;
import "google/protobuf/empty.proto";
import "theatre/v1/options.proto";
service ExtraService {
  rpc Declared(google.protobuf.Empty) returns (google.protobuf.Empty) {
    option (theatre.v1.access) = ACCESS_USER;
  }
  rpc Forgotten(google.protobuf.Empty) returns (google.protobuf.Empty);
}
"#,
    )
    .unwrap();
    let pool = compile(
        &["proto".as_ref(), dir.path()],
        &["extra/extra.proto", "theatre/v1/auth.proto"],
    );
    let err = catalogue::catalogue(&pool).unwrap_err();
    assert!(err.contains("theatre.v1.ExtraService.Forgotten"), "{err}");
    assert!(!err.contains("Declared"), "{err}");
}
