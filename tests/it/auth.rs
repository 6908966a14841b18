//! Sign-up, login, tokens and the per-method role table, through real gRPC.

use crate::common::*;
use theatre::{entity::user, proto};
use tonic::Code;

on_both_backends!(
    sign_up_login_and_who_am_i_round_trip,
    duplicate_email_is_already_exists_and_writes_nothing,
    bad_sign_up_input_names_the_field_and_writes_nothing,
    wrong_password_and_unknown_email_are_unauthenticated,
    missing_garbled_tampered_and_expired_tokens_are_unauthenticated,
    user_role_cannot_call_admin_methods,
    admin_promotes_user_and_new_token_carries_role,
    set_user_role_rejects_bad_input,
    health_and_reflection_need_no_token,
    check_token_returns_the_claims_without_the_database,
);

async fn check_token_returns_the_claims_without_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut alice = app.user("alice").await;
    let mut admin = app.admin().await;
    let before = app.server.db().statements();
    let claims = alice
        .auth
        .check_token(proto::CheckTokenRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(claims.user_id, alice.user_id);
    assert_eq!(claims.role, proto::Role::User as i32);
    let claims = admin
        .auth
        .check_token(proto::CheckTokenRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(claims.role, proto::Role::Admin as i32);
    assert_eq!(
        app.server.db().statements(),
        before,
        "no SQL for a token check"
    );
    let anonymous = app
        .anonymous_auth()
        .check_token(proto::CheckTokenRequest {})
        .await;
    assert_status(anonymous, Code::Unauthenticated, "bearer");
}

async fn sign_up_login_and_who_am_i_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let signed_up = app
        .anonymous_auth()
        .sign_up(proto::SignUpRequest {
            email: "  Alice@Example.COM ".into(),
            password: PASSWORD.into(),
            display_name: "Alice".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(signed_up.email, "alice@example.com", "email is normalised");
    assert_eq!(signed_up.role, proto::Role::User as i32);

    let login = app
        .anonymous_auth()
        .login(proto::LoginRequest {
            email: "alice@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(login.access_token.starts_with("v4.public."));
    let expires = login.expires_at.unwrap().seconds;
    let expected = (app.clock_now() + chrono::Duration::hours(1)).timestamp();
    assert!((expires - expected).abs() <= 1, "token lives one hour");

    let mut alice = app.with_token(&login.access_token, &signed_up.id);
    let me = alice
        .auth
        .who_am_i(proto::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(me.id, signed_up.id);
    assert_eq!(me.display_name, "Alice");

    let stored =
        user::Entity::find_by_id(theatre::ids::UserId(uuid::Uuid::parse_str(&me.id).unwrap()))
            .one(app.server.db().conn())
            .await
            .unwrap()
            .unwrap();
    assert!(
        stored.password_hash.starts_with("$argon2id$"),
        "argon2id hash stored"
    );
    assert!(!stored.password_hash.contains(PASSWORD));
}

use sea_orm::EntityTrait;

async fn duplicate_email_is_already_exists_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("bob").await;
    let before = app.count(user::Entity).await;
    let again = app
        .anonymous_auth()
        .sign_up(proto::SignUpRequest {
            email: "BOB@theatre.test".into(),
            password: PASSWORD.into(),
            display_name: "Bob again".into(),
        })
        .await;
    assert_status(again, Code::AlreadyExists, "email");
    assert_eq!(app.count(user::Entity).await, before);
}

async fn bad_sign_up_input_names_the_field_and_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.count(user::Entity).await;
    let cases = [
        ("", PASSWORD, "Name", "email"),
        ("not-an-email", PASSWORD, "Name", "email"),
        ("a@b", PASSWORD, "Name", "email"),
        ("two@@example.com", PASSWORD, "Name", "email"),
        ("ok@example.com", "short", "Name", "password"),
        ("ok@example.com", &"x".repeat(129), "Name", "password"),
        ("ok@example.com", PASSWORD, "", "display_name"),
        ("ok@example.com", PASSWORD, &"n".repeat(101), "display_name"),
    ];
    for (email, password, display_name, field) in cases {
        let result = app
            .anonymous_auth()
            .sign_up(proto::SignUpRequest {
                email: email.into(),
                password: password.into(),
                display_name: display_name.into(),
            })
            .await;
        assert_status(result, Code::InvalidArgument, &format!("{field}:"));
    }
    assert_eq!(app.count(user::Entity).await, before, "nothing written");
}

async fn wrong_password_and_unknown_email_are_unauthenticated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("carol").await;
    for (email, password) in [
        ("carol@theatre.test", "wrong-password"),
        ("nobody@theatre.test", PASSWORD),
    ] {
        let result = app
            .anonymous_auth()
            .login(proto::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await;
        assert_status(result, Code::Unauthenticated, "invalid email or password");
    }
}

async fn missing_garbled_tampered_and_expired_tokens_are_unauthenticated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let good = app.user("dave").await;

    let mut no_token = proto::catalog_service_client::CatalogServiceClient::new(app.channel());
    let result = no_token
        .list_theatres(proto::ListTheatresRequest::default())
        .await;
    assert_status(result, Code::Unauthenticated, "missing");

    let mut garbled = app.with_token("not-a-token", "");
    assert_status(
        garbled.auth.who_am_i(proto::WhoAmIRequest {}).await,
        Code::Unauthenticated,
        "invalid",
    );

    // Flip one character of the signed payload: the signature no longer matches.
    let mut chars: Vec<char> = good.token.chars().collect();
    let i = "v4.public.".len() + 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let mut tampered = app.with_token(&tampered, "");
    assert_status(
        tampered.auth.who_am_i(proto::WhoAmIRequest {}).await,
        Code::Unauthenticated,
        "invalid",
    );

    // A token signed by another server's key is rejected too.
    let other = TestApp::spawn(Backend::Sqlite).await;
    let foreign = other.admin().await;
    let mut foreign = app.with_token(&foreign.token, "");
    assert_status(
        foreign.auth.who_am_i(proto::WhoAmIRequest {}).await,
        Code::Unauthenticated,
        "invalid",
    );

    let mut dave = good.clone();
    dave.auth
        .who_am_i(proto::WhoAmIRequest {})
        .await
        .expect("valid before expiry");
    app.clock.advance(chrono::Duration::minutes(61));
    assert_status(
        dave.auth.who_am_i(proto::WhoAmIRequest {}).await,
        Code::Unauthenticated,
        "expired",
    );
}

async fn user_role_cannot_call_admin_methods(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut eve = app.user("eve").await;
    let denied = eve
        .catalog
        .create_movie(proto::CreateMovieRequest {
            title: "Nope".into(),
            description: String::new(),
            duration_minutes: 90,
            genre: "Drama".into(),
        })
        .await;
    assert_status(denied, Code::PermissionDenied, "ADMIN");
    let denied = eve
        .catalog
        .create_theatre(proto::CreateTheatreRequest {
            name: "Mine".into(),
            city: "Porto".into(),
        })
        .await;
    assert_status(denied, Code::PermissionDenied, "ADMIN");
    let denied = eve
        .auth
        .set_user_role(proto::SetUserRoleRequest {
            user_id: eve.user_id.clone(),
            role: proto::Role::Admin as i32,
        })
        .await;
    assert_status(denied, Code::PermissionDenied, "ADMIN");
    assert_eq!(app.count(theatre::entity::movie::Entity).await, 0);
    // Reads are open to users.
    eve.catalog
        .list_theatres(proto::ListTheatresRequest::default())
        .await
        .unwrap();
}

async fn admin_promotes_user_and_new_token_carries_role(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let frank = app.user("frank").await;
    let promoted = admin
        .auth
        .set_user_role(proto::SetUserRoleRequest {
            user_id: frank.user_id.clone(),
            role: proto::Role::Admin as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(promoted.role, proto::Role::Admin as i32);
    let mut frank = app.login("frank@theatre.test", PASSWORD).await;
    frank
        .catalog
        .create_theatre(proto::CreateTheatreRequest {
            name: "Frank's".into(),
            city: "Faro".into(),
        })
        .await
        .expect("promoted user may create theatres");
}

async fn set_user_role_rejects_bad_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut admin = app.admin().await;
    let gina = app.user("gina").await;
    let r = admin
        .auth
        .set_user_role(proto::SetUserRoleRequest {
            user_id: gina.user_id.clone(),
            role: proto::Role::Unspecified as i32,
        })
        .await;
    assert_status(r, Code::InvalidArgument, "role:");
    let r = admin
        .auth
        .set_user_role(proto::SetUserRoleRequest {
            user_id: "42".into(),
            role: proto::Role::Admin as i32,
        })
        .await;
    assert_status(r, Code::InvalidArgument, "user_id:");
    let r = admin
        .auth
        .set_user_role(proto::SetUserRoleRequest {
            user_id: uuid::Uuid::now_v7().to_string(),
            role: proto::Role::Admin as i32,
        })
        .await;
    assert_status(r, Code::NotFound, "user");
}

async fn health_and_reflection_need_no_token(backend: Backend) {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let app = TestApp::spawn(backend).await;
    let mut health = HealthClient::new(app.channel());
    for service in ["", "theatre.v1.BookingService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, 1, "{service:?} is SERVING");
    }

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(app.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "theatre.v1.AuthService",
        "theatre.v1.CatalogService",
        "theatre.v1.BookingService",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} in {names:?}"
        );
    }
}
