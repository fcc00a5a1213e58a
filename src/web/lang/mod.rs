//! Every word the connect page shows, one file per language: English, Norwegian (bokmål),
//! Danish and Dutch, the languages of the CRM's own set-up guides. A [`Text`] has one field
//! per string, so a language that lacks one does not compile. [`pick`] chooses by the
//! browser's `Accept-Language` (q-values honoured), English when none fits.
//!
//! What the page shows from elsewhere stays in English on purpose: the live test's advice
//! (`crate::check`'s wording table) and the provider's own error text.

mod da;
mod en;
mod nb;
mod nl;

pub use da::DA;
pub use en::EN;
pub use nb::NB;
pub use nl::NL;

/// The strings of one language.
pub struct Text {
    /// The `lang` attribute (BCP 47).
    pub code: &'static str,
    /// The site's name in the title bar and header.
    pub site: &'static str,
    pub nav_connect: &'static str,
    pub nav_accounts: &'static str,
    pub nav_help: &'static str,
    pub sign_out: &'static str,

    pub signin_title: &'static str,
    pub signin_with_password: &'static str,
    /// `{command}`: where the page puts the command (as code).
    pub signin_with_link: &'static str,
    pub password_label: &'static str,
    pub signin_button: &'static str,
    pub signin_wrong: &'static str,
    pub signin_locked: &'static str,
    /// `{command}` as in `signin_with_link`.
    pub signin_link_invalid: &'static str,

    pub forbidden_title: &'static str,
    pub forbidden_text: &'static str,
    pub not_found_title: &'static str,
    pub not_found_text: &'static str,

    pub connect_title: &'static str,
    pub connect_intro: &'static str,
    pub email_label: &'static str,
    pub next_button: &'static str,
    pub advanced_link: &'static str,
    pub not_an_address: &'static str,

    pub found_title: &'static str,
    pub found_provider: &'static str,
    pub found_how: &'static str,
    pub how_preset: &'static str,
    pub how_mx: &'static str,
    pub how_autoconfig: &'static str,
    pub how_guess: &'static str,
    pub how_given: &'static str,
    pub unknown_provider: &'static str,
    pub found_imap: &'static str,
    pub found_smtp: &'static str,
    pub found_plaintext: &'static str,

    pub oauth_intro: &'static str,
    pub sign_in_with: &'static str,
    /// `{provider}`: where the page puts the provider's brand.
    pub oauth_not_set_up: &'static str,
    pub password_intro: &'static str,
    pub app_password_intro: &'static str,
    pub app_password_help: &'static str,
    pub local_password_label: &'static str,
    pub local_password_hint: &'static str,
    pub connect_button: &'static str,

    pub address_not_host_port: &'static str,
    pub address_bad_port: &'static str,
    pub address_no_host: &'static str,
    pub bad_security: &'static str,
    pub password_missing: &'static str,
    pub duplicate_account: &'static str,
    pub test_failed: &'static str,
    pub advice_untrusted_certificate: &'static str,
    pub save_failed: &'static str,
    pub not_applied: &'static str,
    pub done_title: &'static str,
    pub done_intro: &'static str,
    pub client_server_label: &'static str,
    pub imap_port_label: &'static str,
    pub smtp_port_label: &'static str,
    pub no_smtp: &'static str,
    pub client_user_label: &'static str,
    pub client_password_label: &'static str,
    pub local_password_once: &'static str,
    pub client_security_label: &'static str,
    pub folders_label: &'static str,
    pub folders_unknown: &'static str,
    pub oauth_no_app: &'static str,
    pub oauth_failed_title: &'static str,
    pub oauth_denied: &'static str,
    pub oauth_state_mismatch: &'static str,
    pub oauth_no_pending: &'static str,
    pub oauth_token_failed: &'static str,
    pub unknown_account: &'static str,
    pub not_oauth_account: &'static str,
    pub reauthorized_title: &'static str,
    pub reauthorized_text: &'static str,
    pub edit_title: &'static str,
    pub edit_intro: &'static str,
    pub edit_oauth_intro: &'static str,
    pub keep_password_hint: &'static str,
    pub keep_local_password_hint: &'static str,
    pub save_button: &'static str,
    pub edited_title: &'static str,
    pub edited_text: &'static str,
    pub edit_failed: &'static str,
    pub not_saved_title: &'static str,

    pub advanced_title: &'static str,
    pub advanced_intro: &'static str,
    pub not_recognised: &'static str,
    pub imap_server_label: &'static str,
    pub smtp_server_label: &'static str,
    pub smtp_empty_hint: &'static str,
    pub security_label: &'static str,
    pub security_tls: &'static str,
    pub security_starttls: &'static str,
    pub security_none: &'static str,
    pub username_label: &'static str,
    pub username_hint: &'static str,

    pub help_title: &'static str,
    pub help_imap_title: &'static str,
    pub help_imap: &'static str,
    pub help_blocked_title: &'static str,
    pub help_blocked: &'static str,
    pub help_less_secure: &'static str,
    pub help_app_title: &'static str,
    pub help_app: &'static str,
    pub help_app_none: &'static str,
    pub help_steps_title: &'static str,
    pub help_steps_intro: &'static str,
    pub step_dns: &'static str,
    pub step_tcp: &'static str,
    pub step_tls: &'static str,
    pub step_greeting: &'static str,
    pub step_capabilities: &'static str,
    pub step_login: &'static str,
    pub step_logout: &'static str,

    pub step_imap_login: &'static str,
    pub step_folder_list: &'static str,
    pub step_smtp_auth: &'static str,

    pub accounts_title: &'static str,
    pub accounts_none: &'static str,
    pub accounts_connect_first: &'static str,
    pub col_account: &'static str,
    pub col_sign_in: &'static str,
    pub col_servers: &'static str,
    pub col_token: &'static str,
    pub col_last_login: &'static str,
    pub col_last_check: &'static str,
    pub auth_password: &'static str,
    pub auth_oauth: &'static str,
    pub receives_only: &'static str,
    pub token_not_used: &'static str,
    pub token_valid: &'static str,
    pub token_access_until: &'static str,
    pub token_refresh_until: &'static str,
    pub token_expired: &'static str,
    pub token_revoked: &'static str,
    pub token_needs_authorize: &'static str,
    pub token_unreadable: &'static str,
    pub login_never: &'static str,
    pub check_never: &'static str,
    pub undiscovered: &'static str,
    pub check_button: &'static str,
    pub edit_link: &'static str,
    pub remove_link: &'static str,
    pub reauthorize_button: &'static str,
    pub check_title: &'static str,
    pub check_intro: &'static str,
    pub check_passed: &'static str,
    pub check_failed: &'static str,
    pub back_to_accounts: &'static str,
    pub remove_title: &'static str,
    pub remove_question: &'static str,
    pub remove_what: &'static str,
    pub remove_untouched: &'static str,
    pub remove_button: &'static str,
    pub cancel_link: &'static str,
    pub removed_title: &'static str,
    pub removed_from_file: &'static str,
    pub removed_from_store: &'static str,
    pub removed_password: &'static str,
    pub removed_tokens: &'static str,
    pub removed_no_tokens: &'static str,
    pub kept_tokens_in_use: &'static str,
    pub kept_tokens_unknown: &'static str,
    pub kept_tokens_unreadable: &'static str,
    pub removed_not_applied: &'static str,
    pub remove_failed: &'static str,
    pub discovery_details: &'static str,
    pub error_details: &'static str,
}

/// Every language, English first (the fallback).
pub const ALL: [&Text; 4] = [&EN, &NB, &DA, &NL];

/// The language for an `Accept-Language` header: the highest q-value among the languages we
/// have (by primary tag: `nl-BE` is Dutch; `no` and `nn` read bokmål well), ties in the
/// header's order; English when none fits or the header is absent or unreadable.
pub fn pick(accept_language: Option<&str>) -> &'static Text {
    let Some(header) = accept_language else {
        return &EN;
    };
    let mut best: Option<(&'static Text, u16)> = None;
    // Bounded: a header of thousands of entries costs no more than its first few.
    for item in header.split(',').take(32) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1000), quality);
        let (Some(text), Some(q)) = (by_tag(tag), q) else {
            continue;
        };
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((text, q));
        }
    }
    best.map_or(&EN, |(t, _)| t)
}

/// The language of a tag's primary subtag.
fn by_tag(tag: &str) -> Option<&'static Text> {
    let primary = tag.split('-').next()?.to_ascii_lowercase();
    match primary.as_str() {
        "en" => Some(&EN),
        "nb" | "no" | "nn" => Some(&NB),
        "da" => Some(&DA),
        "nl" => Some(&NL),
        _ => None,
    }
}

/// A q-value (`0`, `0.5`, `1.000`) in thousandths; `None` when malformed.
fn quality(text: &str) -> Option<u16> {
    let text = text.trim();
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    let q = whole + frac_value;
    (q <= 1000).then_some(q)
}

/// The brand on a "Sign in with …" button (names, not words: the same in every language).
pub fn brand(provider: crate::provider::OAuthProvider) -> &'static str {
    match provider {
        crate::provider::OAuthProvider::Google => "Google",
        crate::provider::OAuthProvider::Microsoft => "Microsoft",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(header: &str) -> &'static str {
        pick(Some(header)).code
    }

    #[test]
    fn picks_by_q_value_and_primary_tag() {
        assert_eq!(pick(None).code, "en");
        assert_eq!(code("nb"), "nb");
        assert_eq!(code("da, en;q=0.8"), "da");
        assert_eq!(code("nl-BE,nl;q=0.9"), "nl");
        assert_eq!(code("fr"), "en");
        assert_eq!(code("fr-FR, de;q=0.9, da;q=0.5, en;q=0.4"), "da");
        assert_eq!(code("en;q=0.5, nn;q=0.6"), "nb");
        assert_eq!(code("nl;q=0, da"), "da");
        assert_eq!(code("da;q=bad, nl;q=0.1"), "nl");
        assert_eq!(code("da;q=1.5"), "en");
        assert_eq!(code(";;;,,,=q"), "en");
    }

    #[test]
    fn every_language_fills_every_string() {
        for t in ALL {
            let all = [
                t.signin_title,
                t.connect_title,
                t.help_imap,
                t.step_logout,
                t.not_recognised,
                t.accounts_title,
                t.remove_untouched,
                t.error_details,
            ];
            assert!(all.iter().all(|s| !s.trim().is_empty()), "{}", t.code);
        }
    }
}
